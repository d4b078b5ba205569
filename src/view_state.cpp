// What a view serializes as, and what unserializing one gives.
//
// The state is the compact state of FORMAT.md 4: a raw vector
// "<name>[:<node>]". In remote mode (options(shmr.remote = TRUE), or a pool
// call over daemons on other hosts) it has the field ";origin=<origin>": the
// region server's address, the region's token, and the region's identity
// (FORMAT.md 4 and 7). Streams of format version 1 hold the string
// "<region>:<node>", still read. Unserializing never fails for a region
// that cannot be had: the result is an unavailable object that raises a
// classed error when used, so a worker that receives one stays alive.
#include <cpp11/protect.hpp>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "core/error.h"
#include "core/names.h"
#include "core/origin.h"
#include "core/process.h"
#include "core/replica.h"
#include "api_support.h"
#include "mapping.h"
#include "r_boundary.h"
#include "remote_glue.h"
#include "view.h"
#include "view_classes.h"

namespace shmr::glue {
namespace {

constexpr size_t kTextSize = kOriginTextSize;
// The longest compact state read: a name, a node and an origin (at most
// 512 bytes) fit with room to spare.
constexpr R_xlen_t kMaxStateSize = 1024;

void copy_text(char* out, size_t size, const std::string& text) {
  std::snprintf(out, size, "%s", text.c_str());
}

SEXP shmr_namespace() {
  SEXP name = PROTECT(Rf_mkString("shmr"));
  SEXP ns = R_FindNamespace(name);
  UNPROTECT(1);
  return ns;
}

// Calls shmr:::<fun>(args...) in the package namespace. R errors propagate;
// so do interrupts (remote_obtain() may wait on another host for long).
SEXP call_shmr(const char* fun, SEXP a, SEXP b = nullptr, SEXP c = nullptr, SEXP d = nullptr,
               SEXP e = nullptr) {
  SEXP call;
  if (b == nullptr) {
    call = PROTECT(Rf_lang2(Rf_install(fun), a));
  } else if (c == nullptr) {
    call = PROTECT(Rf_lang3(Rf_install(fun), a, b));
  } else {
    call = PROTECT(Rf_lang6(Rf_install(fun), a, b, c, d, e));
  }
  SEXP value = eval_taking_interrupts(call, shmr_namespace());
  UNPROTECT(1);
  return value;
}

// A forked child (parallel::mclapply()) sends its objects to its parent, on
// this host: the option, inherited from the parent, does not apply there,
// and the parent's region server is not the child's to use.
// Any value other than TRUE, FALSE or NULL is an R error (a warning in a
// worker): silently read as "off", a typo such as "yes" would send names
// that another host cannot map.
bool remote_option_on() {
  if (process::is_forked_child()) return false;
  SEXP value = Rf_GetOption1(Rf_install("shmr.remote"));
  if (value == R_NilValue) return false;
  if (TYPEOF(value) != LGLSXP || XLENGTH(value) != 1 || LOGICAL(value)[0] == NA_LOGICAL)
    value = call_shmr("bad_remote_option", value);
  return LOGICAL(value)[0] == TRUE;
}

// The compact state `text`, plus the origin field when `origin` is given,
// as the raw vector R writes.
SEXP compact_state(const char* text, const char* origin) {
  const size_t size = std::strlen(text);
  const size_t origin_size = origin == nullptr ? 0 : std::strlen(origin);
  const size_t field_size = origin == nullptr ? 0 : 1 + std::strlen(kOriginField) + 1 + origin_size;
  SEXP out = PROTECT(Rf_allocVector(RAWSXP, static_cast<R_xlen_t>(size + field_size)));
  unsigned char* at = RAW(out);
  std::memcpy(at, text, size);
  if (origin != nullptr) {
    at += size;
    *at++ = ';';
    std::memcpy(at, kOriginField, std::strlen(kOriginField));
    at += std::strlen(kOriginField);
    *at++ = '=';
    std::memcpy(at, origin, origin_size);
  }
  UNPROTECT(1);
  return out;
}

// Plain data gathered in C++ before any R call (r_boundary.h).
struct OutgoingState {
  char region[kTextSize];
  char recorded_origin[kTextSize];
  char scope_origin[kTextSize];
  bool writable;
  double size, pid, created;
};

struct IncomingState {
  bool parsed;
  char region[kTextSize];
  uint64_t node;
  IncomingOrigin origin;
  bool has_made;
  names::RegionMade made;
};

// "shmr: <reason>" -> "<reason>": the classed error adds its own prefix.
const char* bare(const char* message) {
  return std::strncmp(message, "shmr: ", 6) == 0 ? message + 6 : message;
}

SEXP make_unavailable(SEXP cls, SEXP state, const char* region, const char* reason) {
  const R_altrep_class_t* view_class = view_class_from_object(cls);
  if (view_class == nullptr) Rf_error("shmr: malformed serialized shared object (unknown class)");
  return make_unavailable_object(*view_class, state, region, reason);
}

}  // namespace

void check_origin_identity(const RegionReader& reader, const IncomingOrigin& in,
                           const std::string& name) {
  const format::RegionHeader& h = reader.header();
  std::string host = reader.is_replica() ? std::string(reader.replica().origin_host) : remote::local_host();
  RegionIdentity here{host, h.total_size, h.creator_pid, h.created_unix_ms};
  RegionIdentity wanted{in.origin_host, in.size, in.pid, in.created};
  if (!is_wanted_region(here, reader.is_replica(), wanted))
    throw Error(ErrorKind::Corrupt, "a region named '" + name + "' exists on this host but it is " +
                                        (reader.is_replica() ? "a copy of the region on " : "the region on ") +
                                        here.describe() + ", not the one the object refers to, on " +
                                        wanted.describe());
}

namespace {

// Whether this host already has the region or a complete copy of it, as
// remote_obtain() would find first: then the object maps it without asking R
// (a data frame's columns, each a view of one region, would otherwise ask
// once per column). Anything unusual goes to remote_obtain(), which says why.
bool copy_already_here(const std::string& region, const RegionIdentity& origin) noexcept {
  try {
    LocalCopy copy =
        find_local_copy(shm_directory(), region_name_for(region), origin, remote::local_host());
    return copy == LocalCopy::Origin || copy == LocalCopy::Replica;
  } catch (...) {
    return false;
  }
}

}  // namespace

void add_remote_mode_hint(ErrorMessage& message) noexcept {
  static const char kMissing[] = "no shared region named";
  if (std::strncmp(bare(message.text), kMissing, sizeof kMissing - 1) != 0) return;
  const size_t used = std::strlen(message.text);
  std::snprintf(message.text + used, sizeof message.text - used, "%s",
                "; if it was sent from another host, it needs remote mode where it is "
                "shared (options(shmr.remote = TRUE), or a pool; see ?remote)");
}

SEXP make_unavailable_object(R_altrep_class_t cls, SEXP state, const char* region,
                             const char* reason) {
  SEXP info = PROTECT(Rf_allocVector(VECSXP, 3));
  SET_VECTOR_ELT(info, 0, Rf_mkString(region[0] != '\0' ? region : "?"));
  SET_VECTOR_ELT(info, 1, Rf_mkString(bare(reason)));
  SET_VECTOR_ELT(info, 2, state);
  SEXP pointer = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, info));
  // A view's handle may be set on its first use (revive_unavailable_view()),
  // where R may not allocate: its finalizer is registered now.
  if (view_class_from_object(R_SEXP(cls)) != nullptr) own_revived_handle(pointer);
  SEXP object = PROTECT(R_new_altrep(cls, pointer, R_NilValue));
  views_changed();
  // One warning per region and process: a data frame's columns all name it.
  bool first = false;
  ErrorMessage ignored;
  capture_exception(ignored, [&] {
    static std::set<std::string> warned;
    first = warned.insert(region).second;
  });
  if (first) call_shmr("warn_unavailable", VECTOR_ELT(info, 0), VECTOR_ELT(info, 1));
  UNPROTECT(3);
  return object;
}

SEXP unavailable_info(SEXP x) {
  if (!ALTREP(x)) return nullptr;
  SEXP pointer = R_altrep_data1(x);
  if (TYPEOF(pointer) != EXTPTRSXP || R_ExternalPtrAddr(pointer) != nullptr) return nullptr;
  SEXP info = R_ExternalPtrProtected(pointer);
  return TYPEOF(info) == VECSXP && XLENGTH(info) == 3 ? info : nullptr;
}

bool remote::names_may_not_travel() {
  return remote::scope_depth() > 0 || remote::peer_is_remote() || remote_option_on();
}

bool is_unavailable(SEXP x) { return view_class_of(x) != nullptr && unavailable_info(x) != nullptr; }

void raise_unavailable(SEXP x, const ErrorMessage& why) {
  SEXP info = unavailable_info(x);
  SEXP reason = why.set() ? PROTECT(Rf_mkString(bare(why.text))) : PROTECT(VECTOR_ELT(info, 1));
  call_shmr("stop_unavailable", VECTOR_ELT(info, 0), reason);
  UNPROTECT(1);
  Rf_error("shmr: shared region is not available");  // not reached
}

bool unavailable_read_for_mirai_report() {
  SEXP call = PROTECT(Rf_lang1(Rf_install("reading_for_mirai_error_report")));
  SEXP answer = Rf_eval(call, shmr_namespace());
  UNPROTECT(1);
  return TYPEOF(answer) == LGLSXP && XLENGTH(answer) == 1 && LOGICAL(answer)[0] == TRUE;
}

// A foreign object tells a worker (a mirai daemon, a parallel worker) that
// its caller is on another host. Any other process (a session reading
// results or a file from elsewhere) keeps sending its own shares by name to
// the workers of its host.
bool running_as_worker() {
  SEXP call = PROTECT(Rf_lang1(Rf_install("running_as_worker")));
  SEXP answer = Rf_eval(call, shmr_namespace());
  UNPROTECT(1);
  return TYPEOF(answer) == LGLSXP && XLENGTH(answer) == 1 && LOGICAL(answer)[0] == TRUE;
}

SEXP unavailable_state(SEXP x) { return VECTOR_ELT(unavailable_info(x), 2); }

void origin_for_sending(const MappedRegion& region, char* origin, size_t size) {
  origin[0] = '\0';
  OutgoingState out{};
  ErrorMessage message;
  capture_exception(message, [&] {
    const format::RegionHeader& h = region.reader().header();
    copy_text(out.region, sizeof out.region, region.name());
    out.writable = region.access() == Access::SharedWritable;
    out.size = static_cast<double>(h.total_size);
    out.pid = static_cast<double>(h.creator_pid);
    out.created = static_cast<double>(h.created_unix_ms);
    // The usual, local case builds no key.
    if (!remote::has_recorded_origins() && remote::scope_depth() == 0) return;
    const std::string key = remote::origin_key(region.name(), h.creator_pid, h.created_unix_ms);
    if (auto recorded = remote::recorded_origin(key))
      copy_text(out.recorded_origin, sizeof out.recorded_origin, *recorded);
    if (auto known = remote::origin_in_scope(key))
      copy_text(out.scope_origin, sizeof out.scope_origin, *known);
  });
  if (message.set()) raise_r_error(message);
  // An object that came from another host names its origin wherever it goes.
  if (out.recorded_origin[0] != '\0') {
    std::snprintf(origin, size, "%s", out.recorded_origin);
    return;
  }
  if (out.scope_origin[0] != '\0') {
    std::snprintf(origin, size, "%s", out.scope_origin);
    return;
  }
  if (remote::scope_depth() == 0 && !remote_option_on()) return;
  SEXP name = PROTECT(Rf_mkString(out.region));
  SEXP total = PROTECT(Rf_ScalarReal(out.size));
  SEXP pid = PROTECT(Rf_ScalarReal(out.pid));
  SEXP created = PROTECT(Rf_ScalarReal(out.created));
  SEXP writable = PROTECT(Rf_ScalarLogical(out.writable));
  SEXP answer = PROTECT(call_shmr("remote_origin_for", name, total, pid, created, writable));
  if (TYPEOF(answer) != STRSXP || XLENGTH(answer) != 1 || STRING_ELT(answer, 0) == NA_STRING ||
      static_cast<size_t>(LENGTH(STRING_ELT(answer, 0))) >= size)
    Rf_error("shmr: internal error: no origin for region '%s'", out.region);
  std::snprintf(origin, size, "%s", CHAR(STRING_ELT(answer, 0)));
  UNPROTECT(6);
  ErrorMessage ignored;  // not remembered: the next view asks R again
  capture_exception(ignored, [&] {
    remote::remember_origin_in_scope(
        remote::origin_key(out.region, static_cast<int64_t>(out.pid),
                           static_cast<int64_t>(out.created)),
        origin);
  });
}

void read_incoming_origin(const std::string& region, const std::string& text, IncomingOrigin& in) {
  auto origin = parse_origin(text);
  if (!origin || text.size() >= sizeof in.origin_text || region.size() >= sizeof in.region)
    throw Error(ErrorKind::InvalidArgument, "serialized shared object has an invalid origin");
  in.remote = true;
  copy_text(in.region, sizeof in.region, region);
  copy_text(in.origin_text, sizeof in.origin_text, text);
  in.writable = origin->writable;
  copy_text(in.origin_host, sizeof in.origin_host, origin->identity.host);
  in.size = origin->identity.size;
  in.pid = origin->identity.creator_pid;
  in.created = origin->identity.created_unix_ms;
  in.other_host = origin->identity.host != remote::local_host();
  if (in.other_host && !in.writable) in.copy_here = copy_already_here(region, origin->identity);
}

bool foreign_region_unavailable(const IncomingOrigin& in, char* reason, size_t size) {
  if (!in.remote || !in.other_host) return false;
  if (!remote::peer_is_remote() && running_as_worker()) remote::peer_is_remote() = true;
  if (in.writable) {
    std::snprintf(reason, size, "%s",
                  "it is a writable share (readonly = FALSE) of another host: writes made here "
                  "could not reach its owner");
    return true;
  }
  if (in.copy_here) return false;
  SEXP region = PROTECT(Rf_mkString(in.region));
  SEXP origin = PROTECT(Rf_mkString(in.origin_text));
  SEXP answer = PROTECT(call_shmr("remote_obtain", region, origin));
  const bool failed = answer != R_NilValue;
  if (failed) {
    const bool given = TYPEOF(answer) == STRSXP && XLENGTH(answer) == 1 &&
                       STRING_ELT(answer, 0) != NA_STRING;
    std::snprintf(reason, size, "%s",
                  given ? CHAR(STRING_ELT(answer, 0)) : "its bytes could not be fetched");
  }
  UNPROTECT(3);
  return failed;
}

void record_foreign_origin(const IncomingOrigin& in) noexcept {
  if (!in.remote || !in.other_host) return;
  ErrorMessage ignored;
  capture_exception(ignored, [&] {
    remote::record_origin(remote::origin_key(in.region, in.pid, in.created), in.origin_text);
  });
}

namespace {

std::vector<std::shared_ptr<Mapping>>* named_mappings_sink = nullptr;

}  // namespace

NamedMappingsCollector::NamedMappingsCollector(std::vector<std::shared_ptr<Mapping>>& into) noexcept
    : outer_(named_mappings_sink) {
  named_mappings_sink = &into;
}

NamedMappingsCollector::~NamedMappingsCollector() { named_mappings_sink = outer_; }

void note_named_mapping(const std::shared_ptr<Mapping>& mapping) {
  if (named_mappings_sink != nullptr) named_mappings_sink->push_back(mapping);
}

// The state is formatted into fixed buffers, so no C++ object is live when
// R allocates. A region this process made and sends this way becomes the
// receiver's when it is a forked child's parent (parallel::mclapply()
// results) or a pool worker's caller (RegionOwner::hand_over_for_sending()).
SEXP view_serialized_state(const ViewHandle& handle) {
  handle.mapping->region().hand_over_for_sending();
  char local[kTextSize] = "";
  ErrorMessage message;
  capture_exception(message, [&] {
    note_named_mapping(handle.mapping);
    const MappedRegion& region = handle.mapping->region();
    const std::string text =
        names::format_compact_view_state({region.name(), handle.node.index()}, made_of(region));
    if (text.size() >= sizeof local) throw Error(ErrorKind::InvalidArgument, "view state too long");
    copy_text(local, sizeof local, text);
  });
  if (message.set()) raise_r_error(message);
  char origin[kOriginTextSize];
  origin_for_sending(handle.mapping->region(), origin, sizeof origin);
  if (origin[0] != '\0') return compact_state(local, origin);
  // Its name means nothing to a caller on another host.
  if (remote::peer_is_remote()) return nullptr;
  return compact_state(local, nullptr);
}

namespace {

// Fills `in` from the untrusted state (`text_size` bytes at `text`, compact
// or in the string form of format version 1); on failure, the reason is in
// `message` and `in.parsed` stays false. No R allocation.
void read_incoming_state(const char* text, size_t text_size, bool compact, IncomingState& in,
                         ErrorMessage& message) {
  capture_exception(message, [&] {
    // Anyone can write serialize() output: the state is untrusted.
    names::ViewState wanted;
    std::string origin_text;
    bool has_origin = false;
    if (compact) {
      auto parsed = names::parse_compact_view_state(std::string(text, text_size));
      if (!parsed)
        throw Error(ErrorKind::InvalidArgument,
                    "serialized shared object has an invalid state (not \"<name>[:<node>]\")");
      wanted = parsed->view;
      if (!parsed->fields.empty()) {
        auto fields = names::parse_compact_fields(parsed->fields);
        if (!fields)
          throw Error(ErrorKind::InvalidArgument,
                      "serialized shared object has an invalid state (malformed fields)");
        for (const names::CompactField& field : *fields) {
          if (field.first == names::kMadeField) {
            auto made = names::parse_made(field.second);
            if (!made)
              throw Error(ErrorKind::InvalidArgument,
                          "serialized shared object has an invalid state (malformed made field)");
            in.has_made = true;
            in.made = *made;
            continue;
          }
          if (field.first != kOriginField)
            throw Error(ErrorKind::InvalidArgument,
                        "serialized shared object carries fields this version of shmr does not "
                        "know (written by a newer version?): " + parsed->fields.substr(0, 80));
          origin_text = field.second;
          has_origin = true;
        }
      }
    } else {
      auto parsed = names::parse_view_state(std::string(text, text_size));
      if (!parsed)
        throw Error(ErrorKind::InvalidArgument,
                    "serialized shared object has an invalid state (not \"<region>:<node>\")");
      wanted = *parsed;
    }
    copy_text(in.region, sizeof in.region, wanted.region);
    in.node = wanted.node;
    if (has_origin) read_incoming_origin(wanted.region, origin_text, in.origin);
    in.parsed = true;
  });
}

// The mapping of the region `in` names, with its node in `node`, checked
// against the class `cls` R found in the stream. Throws when the region
// cannot be mapped or is not the one the state names. No R allocation.
std::shared_ptr<Mapping> find_incoming_node(SEXP cls, const IncomingState& in, NodeView& node) {
  auto mapping = mapping_for_unserialize(in.region);
  if (in.origin.remote) check_origin_identity(mapping->reader(), in.origin, in.region);
  if (in.has_made && !in.origin.remote) check_region_made(mapping->region(), in.made);
  NodeView found = mapping->reader().node(in.node);
  const R_altrep_class_t* node_class = view_class_for(found.kind());
  if (node_class == nullptr)
    throw Error(ErrorKind::Corrupt, "serialized shared object refers to a node that is not a vector");
  // The node must be of the type the stream says (an edited stream could
  // otherwise turn a double vector into a character vector).
  if (R_SEXP(*node_class) != cls)
    throw Error(ErrorKind::Corrupt, "serialized shared object refers to a node of another type");
  node = found;
  return mapping;
}

// read_incoming_state() of the state R found in the stream: compact (raw)
// since format version 2, "<region>:<node>" strings from streams written by
// version 1. False, `in` unparsed, when it is neither.
bool read_incoming_state(SEXP state, IncomingState& in, ErrorMessage& message) {
  const bool compact =
      TYPEOF(state) == RAWSXP && XLENGTH(state) > 0 && XLENGTH(state) <= kMaxStateSize;
  if (!compact && (TYPEOF(state) != STRSXP || XLENGTH(state) != 1 ||
                   STRING_ELT(state, 0) == NA_STRING))
    return false;
  const char* text =
      compact ? reinterpret_cast<const char*>(RAW(state)) : CHAR(STRING_ELT(state, 0));
  const size_t text_size = compact ? static_cast<size_t>(XLENGTH(state)) : std::strlen(text);
  read_incoming_state(text, text_size, compact, in, message);
  return true;
}

}  // namespace

SEXP view_from_serialized_state(SEXP cls, SEXP state) {
  IncomingState in{};
  ErrorMessage message;
  if (!read_incoming_state(state, in, message))
    return make_unavailable(cls, state, "", "malformed serialized shared object");
  if (!in.parsed) return make_unavailable(cls, state, in.region, message.text);

  char reason[kMessageSize] = "";
  if (foreign_region_unavailable(in.origin, reason, sizeof reason))
    return make_unavailable(cls, state, in.region, reason);

  SEXP view = view_on_mapping([&](NodeView& node) { return find_incoming_node(cls, in, node); },
                              message);
  if (view == nullptr) {
    if (!in.origin.remote) add_remote_mode_hint(message);
    return make_unavailable(cls, state, in.region, message.text);
  }
  // A copy from another host names its origin wherever it is sent next (on
  // the origin's own host the region itself is exported as usual).
  record_foreign_origin(in.origin);
  return view;
}

ViewHandle* handle_for_length(SEXP x) {
  if (!is_unavailable(x)) return nullptr;
  ErrorMessage why;
  if (revive_unavailable_view(x, why)) return view_handle(x);
  if (!unavailable_read_for_mirai_report()) raise_unavailable(x, why);
  return nullptr;
}

bool revive_unavailable_view(SEXP x, ErrorMessage& why) {
  SEXP info = unavailable_info(x);
  const R_altrep_class_t* cls = view_class_of(x);
  if (info == nullptr || cls == nullptr) return false;
  IncomingState in{};
  ErrorMessage message;
  if (!read_incoming_state(VECTOR_ELT(info, 2), in, message)) return false;
  // Another host's region would be fetched anew at every use: only a copy
  // already here is mapped again.
  if (!in.parsed || (in.origin.remote && in.origin.other_host && !in.origin.copy_here)) return false;
  ViewHandle* handle = nullptr;
  capture_exception(why, [&] {
    NodeView node;
    auto mapping = find_incoming_node(R_SEXP(*cls), in, node);
    handle = handle_for_revived_view(mapping, node);
  });
  if (handle == nullptr) {
    if (!in.origin.remote) add_remote_mode_hint(why);
    return false;
  }
  SEXP pointer = R_altrep_data1(x);
  R_SetExternalPtrAddr(pointer, handle);
  // A view now, whatever becomes of its handle: never unavailable again.
  R_SetExternalPtrProtected(pointer, R_NilValue);
  views_changed();
  record_foreign_origin(in.origin);
  return true;
}

}  // namespace shmr::glue
