// ALTREP list views (R >= 4.3). data1 is an external pointer to a
// ListHandle; data2 holds the elements decoded so far: NULL until the first
// read, then a list of the node's length in which NULL means "not decoded
// yet" (a NULL element is simply decoded again, which costs nothing). Once
// the list is changed (Set_elt), data2 holds every element and is the
// list's own; the region never changes (a script's change to a writable
// share's list that would do this is refused instead).
//
// R marks every element it takes from an ALTREP list as not mutable, so a
// change to an element (x$a[1] <- 0) always works on a copy. C code can
// still write into an element in place: list_view_unchanged() looks for
// that before the list travels or is named as its region's.
#include "list_view.h"
#include "remote_glue.h"

#include <cpp11/protect.hpp>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/names.h"
#include "core/stream_namespaces.h"
#include "decode.h"
#include "decoded_check.h"
#include "r_boundary.h"
#include "serialized_objects.h"
#include "view.h"
#include "view_classes.h"
#include "writable_copies.h"

namespace shmr::glue {

namespace {

// What a list's state says, as plain data: fetching the region of another
// host runs R code.
struct IncomingList {
  bool parsed;
  char region[kOriginTextSize];
  uint64_t node;
  bool has_length;
  uint64_t length;
  bool has_made;
  names::RegionMade made;
  IncomingOrigin origin;
  double recorded_length;  // the length an unavailable list keeps; -1 for none
};

// Reads the state of a serialized list into `wanted` (parsed when it could
// be read); `message` says why the list is unavailable, if it is. Anyone can
// write serialize() output: the state is untrusted. Never raises.
void read_list_state(SEXP state, IncomingList& wanted, ErrorMessage& message) {
  wanted.recorded_length = -1;
  StateBytes bytes = state_bytes(state);
  capture_exception(message, [&] {
    if (bytes.data == nullptr) throw Error(ErrorKind::InvalidArgument, "malformed serialized shared list");
    std::string unknown_fields;
    auto parsed = parse_list_state(bytes, &unknown_fields);
    if (!parsed) {
      if (!unknown_fields.empty())
        throw Error(ErrorKind::InvalidArgument,
                    "serialized shared list carries fields this version of shmr does not know "
                    "(written by a newer version?): " + unknown_fields.substr(0, 80));
      throw Error(ErrorKind::InvalidArgument, "serialized shared list has an invalid state");
    }
    if (parsed->view.region.size() >= sizeof wanted.region)
      throw Error(ErrorKind::InvalidArgument, "serialized shared list has an invalid state");
    std::snprintf(wanted.region, sizeof wanted.region, "%s", parsed->view.region.c_str());
    wanted.node = parsed->view.node;
    if (parsed->length) {
      wanted.has_length = true;
      wanted.length = *parsed->length;
      if (*parsed->length <= static_cast<uint64_t>(R_XLEN_T_MAX))
        wanted.recorded_length = static_cast<double>(*parsed->length);
    }
    if (parsed->made) {
      wanted.has_made = true;
      wanted.made = *parsed->made;
    }
    if (parsed->origin) read_incoming_origin(parsed->view.region, *parsed->origin, wanted.origin);
    wanted.parsed = true;
  });
  char reason[kMessageSize] = "";
  if (wanted.parsed && !message.set() && foreign_region_unavailable(wanted.origin, reason, sizeof reason))
    message.assign(reason);
}

// The mapping of the region a parsed list state names, with its List node in
// `node`, checked against what the state records. Throws when the region
// cannot be had or is not the one the state names. No R allocation.
std::shared_ptr<Mapping> find_incoming_list(const IncomingList& wanted, NodeView& node) {
  auto mapping = mapping_for_unserialize(wanted.region);
  if (wanted.origin.remote) {
    check_origin_identity(mapping->reader(), wanted.origin, wanted.region);
  } else if (wanted.has_made) {
    check_region_made(mapping->region(), wanted.made);
  }
  NodeView found = mapping->reader().node(wanted.node);
  if (found.kind() != format::NodeKind::List || (found.flags() & format::kNodeFromPairlist) != 0)
    throw Error(ErrorKind::Corrupt, "serialized shared list refers to a node that is not a list");
  if (wanted.has_length && wanted.length != found.length())
    throw Error(ErrorKind::Corrupt, "serialized shared list's length is not its node's");
  node = found;
  return mapping;
}

// What `make(mapping, node)` builds of the list a state names, or nullptr
// with `message` saying why there is none. Never raises but for an R error
// in `make`, continued once no C++ object is live.
template <typename Make>
SEXP build_incoming_list(const IncomingList& wanted, ErrorMessage& message, Make make) {
  SEXP list = nullptr;
  SEXP unwind_token = nullptr;
  if (wanted.parsed && !message.set()) capture_exception(message, [&] {
    NodeView node;
    auto mapping = find_incoming_list(wanted, node);
    try {
      list = make(mapping, node);
    } catch (const cpp11::unwind_exception& e) {
      unwind_token = e.token;
    }
  });
  if (unwind_token != nullptr) R_ContinueUnwind(unwind_token);
  return list;
}

}  // namespace

#if SHMR_HAVE_ALTLIST

namespace {

R_altrep_class_t list_cls;

void finalize_handle(SEXP pointer) {
  auto* handle = static_cast<ListHandle*>(R_ExternalPtrAddr(pointer));
  R_ClearExternalPtr(pointer);
  if (handle != nullptr) handle->mapping->remove_view(handle->node.index(), nullptr, 0);
  try {
    delete handle;
  } catch (...) {
    // Releasing the mapping only unmaps and unlinks: nothing to report here.
  }
}

ListHandle* own_handle(SEXP x) {
  return static_cast<ListHandle*>(R_ExternalPtrAddr(R_altrep_data1(x)));
}

// The handle of a list whose region can still be read; raises an R error
// otherwise. Call only from a frame that owns no C++ object.
ListHandle& open_handle(SEXP x) {
  ListHandle* handle = own_handle(x);
  if (handle == nullptr) {
    if (unavailable_info(x) != nullptr) raise_unavailable(x);
    Rf_error("shmr: this shared list has been released");
  }
  if (handle->mapping->is_closed())
    Rf_error("shmr: shared object '%s' was closed; its data can no longer be used",
             handle->mapping->region().name().c_str());
  return *handle;
}

// Runs `body` (C++ that may throw, and R calls inside unwind_protect), then,
// from this frame, which owns no C++ object, continues an R error or raises
// the C++ error's message.
template <typename Body>
SEXP run_guarded(Body&& body) {
  SEXP value = R_NilValue;
  SEXP unwind_token = nullptr;
  ErrorMessage message;
  capture_exception(message, [&] {
    try {
      value = body();
    } catch (const cpp11::unwind_exception& e) {
      unwind_token = e.token;
    }
  });
  if (unwind_token != nullptr) R_ContinueUnwind(unwind_token);
  if (message.set()) raise_r_error(message);
  return value;
}

// The table of serialized objects the list shares with its decoded root and
// every view made from it (serialized_objects.h).
SEXP table_of(SEXP x) { return R_ExternalPtrProtected(R_altrep_data1(x)); }

SEXP decoded_element(SEXP x, R_xlen_t i) {
  ListHandle& handle = open_handle(x);
  SEXP table = table_of(x);
  return run_guarded([&] { return decode_list_element(handle, static_cast<uint64_t>(i), table); });
}

// Whether element `child` of the list may be one node met in several places
// (rep(list(v), n), the pieces of split() sharing their levels, one
// environment held twice): a list or a serialized object, or a vector whose
// node has a live view on the list's mapping already.
bool may_repeat(const ListHandle& handle, const NodeView& child) {
  switch (child.kind()) {
    case format::NodeKind::List:
    case format::NodeKind::Serialized:
    case format::NodeKind::StreamElement:
      return true;
    case format::NodeKind::Null:
      return false;
    default:
      return format::element_size(child.kind()) != 0 && handle.mapping->refuses_new_view_of(child.index());
  }
}

// The element decoded before from the node of element `i`, at another
// position, or nullptr. One node decodes to one object, as R's own list
// held one object there: another view of a vector would need a mapping of
// its own (a process has at most 65,530), another unserialize() of an
// environment would be another environment. R marks what it takes from an
// ALTREP list as not mutable, so the places never change each other.
SEXP earlier_element(ListHandle& handle, SEXP cache, R_xlen_t i) noexcept {
  if (cache == R_NilValue || handle.mapping->is_closed()) return nullptr;
  try {
    const uint64_t node = handle.node.child(static_cast<uint64_t>(i));
    if (!handle.positions) {
      if (!may_repeat(handle, handle.mapping->reader().node(node))) return nullptr;
      auto positions = std::make_unique<std::unordered_map<uint64_t, R_xlen_t>>();
      for (R_xlen_t j = 0; j < XLENGTH(cache); ++j)
        if (VECTOR_ELT(cache, j) != R_NilValue) positions->emplace(handle.node.child(static_cast<uint64_t>(j)), j);
      handle.positions = std::move(positions);
    }
    auto found = handle.positions->find(node);
    if (found == handle.positions->end()) return nullptr;
    SEXP earlier = VECTOR_ELT(cache, found->second);
    return earlier == R_NilValue ? nullptr : earlier;
  } catch (...) {
    return nullptr;  // a corrupt node, or no memory: decoded as usual
  }
}

void note_position(ListHandle& handle, R_xlen_t i) noexcept {
  if (!handle.positions) return;
  try {
    handle.positions->emplace(handle.node.child(static_cast<uint64_t>(i)), i);
  } catch (...) {
    // Not remembered: a later place of the same node decodes it again.
  }
}

SEXP element_cache(SEXP x) {
  SEXP cache = R_altrep_data2(x);
  if (cache != R_NilValue) return cache;
  cache = PROTECT(Rf_allocVector(VECSXP, static_cast<R_xlen_t>(open_handle(x).node.length())));
  R_set_altrep_data2(x, cache);
  UNPROTECT(1);
  return cache;
}

// Element `i` decoded, or the object an earlier place of its node holds,
// stored in the cache.
SEXP decode_into_cache(SEXP x, SEXP cache, R_xlen_t i) {
  ListHandle* handle = own_handle(x);
  SEXP value = handle != nullptr ? earlier_element(*handle, cache, i) : nullptr;
  if (value == nullptr) value = decoded_element(x, i);
  SET_VECTOR_ELT(cache, i, value);
  if (handle != nullptr) note_position(*handle, i);
  return value;
}

// An unavailable list keeps its length: its names' for a named list, the
// one its state records for any other. It cannot raise the error
// here: R reads the length of every list a function returns.
R_xlen_t unavailable_length(SEXP x) {
  SEXP recorded = R_ExternalPtrTag(R_altrep_data1(x));
  if (TYPEOF(recorded) == REALSXP && XLENGTH(recorded) == 1)
    return static_cast<R_xlen_t>(REAL(recorded)[0]);
  SEXP names = Rf_getAttrib(x, R_NamesSymbol);
  return TYPEOF(names) == STRSXP ? XLENGTH(names) : 0;
}

R_xlen_t list_length(SEXP x) {
  ListHandle* handle = own_handle(x);
  if (handle != nullptr) return static_cast<R_xlen_t>(handle->node.length());
  return unavailable_info(x) != nullptr ? unavailable_length(x) : 0;
}

// R indexes a list by its names without checking them against its length,
// and a list view takes the names its serialized stream carries: an edited
// stream can give it more names than elements.
void check_element_index(SEXP x, R_xlen_t i) {
  if (i >= 0 && i < list_length(x)) return;
  Rf_error("shmr: element %lld of a shared list of length %lld: its names are longer than the list "
           "(a damaged or edited serialized object)",
           static_cast<long long>(i) + 1, static_cast<long long>(list_length(x)));
}

// R calls Elt with the garbage collector off: what is decoded here is safe
// until it is stored in the cache.
SEXP list_elt(SEXP x, R_xlen_t i) {
  check_element_index(x, i);
  if (own_handle(x) == nullptr && unavailable_info(x) != nullptr &&
      unavailable_read_for_mirai_report())
    return R_NilValue;
  SEXP cache = R_altrep_data2(x);
  if (cache != R_NilValue) {
    SEXP value = VECTOR_ELT(cache, i);
    if (value != R_NilValue || own_handle(x)->written) return value;
  }
  return decode_into_cache(x, element_cache(x), i);
}

// Every element, decoded into the cache (once the list is written, the
// cache is complete already).
SEXP materialized(SEXP x) {
  ListHandle* handle = own_handle(x);
  if (handle != nullptr && handle->written) return R_altrep_data2(x);
  SEXP cache = element_cache(x);
  R_xlen_t n = XLENGTH(cache);
  for (R_xlen_t i = 0; i < n; ++i)
    if (VECTOR_ELT(cache, i) == R_NilValue) decode_into_cache(x, cache, i);
  return cache;
}

// True when `mapping`, which `value` reads, maps the writable share that
// `handle` reads, `node` is element `i`'s node there, and `value` has the
// attributes of the element read before.
bool reads_node_of_element(const ListHandle& handle, SEXP cache, R_xlen_t i, SEXP value,
                           const Mapping& mapping, uint64_t node) {
  if (mapping.region().access() != Access::SharedWritable ||
      mapping.region().name() != handle.mapping->region().name())
    return false;
  SEXP before = cache == R_NilValue ? R_NilValue : VECTOR_ELT(cache, i);
  if (before == R_NilValue || !R_compute_identical(ATTRIB(before), ATTRIB(value), 16)) return false;
  try {
    return handle.node.child(static_cast<uint64_t>(i)) == node;
  } catch (...) {
    return false;
  }
}

// True when `value`, set as element `i` of the unchanged list view `handle`
// is of, is that element as its region holds it: a view that writes through
// to the element's node of a writable share (`l$v[2] <- 0` puts R's copy of
// l$v back, whose write reached the region).
bool is_element_of_node(const ListHandle& handle, SEXP cache, R_xlen_t i, SEXP value) {
  const ViewHandle* view = view_handle(value);
  if (view == nullptr || view->is_slice() || view->holds_private_values()) return false;
  return reads_node_of_element(handle, cache, i, value, *view->mapping, view->node.index());
}

// True when `value` is an unchanged list view of the list node of element
// `i` of a writable share: R's copy of a list inside the list, put back in
// its place (`l$a$b[2] <- 0` puts its copy of l$a back; `l[[c(1, 1, 2)]] <- 0`
// puts it there before it goes on), whose elements write through or were
// refused.
bool is_list_of_node(const ListHandle& handle, SEXP cache, R_xlen_t i, SEXP value) {
  const ListHandle* list = list_view_handle(value);
  if (list == nullptr || list->written) return false;
  return reads_node_of_element(handle, cache, i, value, *list->mapping, list->node.index());
}

bool is_element_as_shared(const ListHandle& handle, SEXP cache, R_xlen_t i, SEXP value) {
  if (is_list_of_node(handle, cache, i, value)) return true;
  return is_element_of_node(handle, cache, i, value) &&
         view_handle(value)->writable_copy != WritableCopy::Pending;
}

void list_set_elt(SEXP x, R_xlen_t i, SEXP value) {
  check_element_index(x, i);
  ListHandle* handle = own_handle(x);
  if (handle != nullptr && !handle->written) {
    // R's recursive `[[<-` (`l[[c(1, 2)]] <- v`) puts its copy of the
    // element in its place before it writes into it. Decided only then, the
    // copy would be one a list holds, which R writes into only as scratch
    // space (a private copy); decided now, while this list still holds just
    // the share's elements, it writes through or is refused as the copy of
    // `l[[1]][2] <- v` is.
    if (is_element_of_node(*handle, R_altrep_data2(x), i, value) &&
        view_handle(value)->writable_copy == WritableCopy::Pending)
      settle_writable_copy(value, *view_handle(value), true);
    if (is_element_as_shared(*handle, R_altrep_data2(x), i, value)) {
      SET_VECTOR_ELT(R_altrep_data2(x), i, value);
      return;
    }
    // Anything else cannot reach the region: a script's change to the
    // share is refused here, before the list changes, rather than leave
    // its variable a private list that no other process sees. R itself
    // clears the places of a list it has moved the elements out of (into
    // the longer list `l$new <- v` makes, R >= 4.5): NULL is let through.
    if (value != R_NilValue) refuse_element_replacement(x, *handle, i);
  }
  SEXP cache = materialized(x);
  own_handle(x)->written = true;
  SET_VECTOR_ELT(cache, i, value);
}

// R asks for a pointer to the elements only to read them (it refuses a
// writable one for ALTREP lists itself); C code such as data.table's does.
void* list_dataptr(SEXP x, Rboolean) { return const_cast<void*>(DATAPTR_RO(materialized(x))); }

const void* list_dataptr_or_null(SEXP x) {
  ListHandle* handle = own_handle(x);
  if (handle == nullptr || !handle->written) return nullptr;
  return DATAPTR_RO(R_altrep_data2(x));
}

enum class Walk { Finished, Stopped, Incomplete };

// Calls `visit` on each node the list node holds, at any depth (elements
// and attributes), itself included, each once, until it returns false
// (Stopped). Incomplete past kMostNodesSearched nodes or on a node the
// reader refuses: the caller then takes the slower way that is always right.
template <typename Visit>
Walk walk_nodes(const ListHandle& handle, Visit&& visit) noexcept {
  constexpr uint64_t kMostNodesSearched = uint64_t{1} << 16;
  try {
    const RegionReader& reader = handle.mapping->reader();
    std::vector<uint64_t> pending{handle.node.index()};
    std::unordered_set<uint64_t> seen{handle.node.index()};
    while (!pending.empty()) {
      if (seen.size() > kMostNodesSearched) return Walk::Incomplete;
      const NodeView node = reader.node(pending.back());
      pending.pop_back();
      if (!visit(node)) return Walk::Stopped;
      auto queue = [&](uint64_t index) {
        if (seen.insert(index).second) pending.push_back(index);
      };
      for (uint32_t a = 0; a < node.attribute_count(); ++a) queue(node.attribute_value(a));
      if (node.kind() == format::NodeKind::List)
        for (uint64_t i = 0; i < node.length(); ++i) queue(node.child(i));
    }
    return Walk::Finished;
  } catch (...) {
    return Walk::Incomplete;
  }
}

// Whether the list node holds an object stored serialized (an environment,
// a function); true too when that cannot be told.
bool holds_serialized(const ListHandle& handle) noexcept {
  return walk_nodes(handle, [](const NodeView& node) {
           return node.kind() != format::NodeKind::Serialized &&
                  node.kind() != format::NodeKind::StreamElement;
         }) != Walk::Finished;
}

// The objects of its region's stream that the list node holds, as their
// positions in the stream. False when that cannot be told without reading
// them all: a version 1 to 3 region's Serialized node, a stream other than
// node 0, a walk left incomplete.
bool stream_positions(const ListHandle& handle, std::vector<uint64_t>& positions) noexcept {
  return walk_nodes(handle, [&](const NodeView& node) {
           if (node.kind() == format::NodeKind::Serialized) return false;
           if (node.kind() != format::NodeKind::StreamElement) return true;
           if (node.stream() != 0) return false;
           positions.push_back(node.length());
           return true;
         }) == Walk::Finished;
}

// Whether `x` holds what R keeps by reference in a serialize() stream (an
// environment, also a closure's or a formula's; an external pointer). True
// as well past kMostVisited objects. Only reads: never raises.
bool holds_references(SEXP x) noexcept {
  constexpr size_t kMostVisited = 100000;
  try {
    std::vector<SEXP> pending{x};
    size_t visited = 0;
    while (!pending.empty()) {
      if (++visited > kMostVisited) return true;
      SEXP item = pending.back();
      pending.pop_back();
      switch (TYPEOF(item)) {
        case ENVSXP:
        case CLOSXP:
        case EXTPTRSXP:
        case WEAKREFSXP:
        case PROMSXP:
        case BCODESXP:
          return true;
        case LISTSXP:
        case LANGSXP:
        case DOTSXP:
          for (SEXP cell = item; cell != R_NilValue; cell = CDR(cell)) {
            if (++visited > kMostVisited || (TYPEOF(cell) != LISTSXP && TYPEOF(cell) != LANGSXP &&
                                             TYPEOF(cell) != DOTSXP))
              return true;
            pending.push_back(CAR(cell));
            if (ATTRIB(cell) != R_NilValue) pending.push_back(ATTRIB(cell));
          }
          continue;  // ATTRIB(item) was queued with the first cell
        case VECSXP:
        case EXPRSXP:
          if (ALTREP(item)) return true;
          for (R_xlen_t i = 0; i < XLENGTH(item); ++i) pending.push_back(VECTOR_ELT(item, i));
          break;
        default:
          break;
      }
      if (ATTRIB(item) != R_NilValue) pending.push_back(ATTRIB(item));
    }
    return false;
  } catch (...) {
    return true;
  }
}

// Unserializing the region's stream into a list's table, run by R_tryCatch():
// R may jump out of it, so it holds plain data only.
struct StreamDecode {
  const std::shared_ptr<Mapping>* mapping;
  SEXP table;
  // The namespaces the stream refers to, as R strings, loaded first.
  SEXP namespaces;
  bool namespaces_loaded;
};

// The token of an R error met unserializing the stream (nullptr for none);
// a C++ error leaves the stream out of the table. Never throws: R called it.
SEXP decode_stream_token(const StreamDecode& decode) noexcept {
  try {
    decode_object(*decode.mapping, 0, decode.table);
  } catch (const cpp11::unwind_exception& e) {
    return e.token;
  } catch (...) {
  }
  return nullptr;
}

// requireNamespace(name, quietly = TRUE) for each namespace, as R would
// load it unserializing: false at the first that does not load.
bool namespaces_load(SEXP namespaces) {
  SEXP require = Rf_install("requireNamespace");
  for (R_xlen_t i = 0; i < XLENGTH(namespaces); ++i) {
    SEXP name = PROTECT(Rf_ScalarString(STRING_ELT(namespaces, i)));
    SEXP call = PROTECT(Rf_lang3(require, name, Rf_ScalarLogical(TRUE)));
    SET_TAG(CDDR(call), Rf_install("quietly"));
    SEXP loaded = Rf_eval(call, R_BaseEnv);
    bool ok = TYPEOF(loaded) == LGLSXP && XLENGTH(loaded) == 1 && LOGICAL(loaded)[0] == TRUE;
    UNPROTECT(2);
    if (!ok) return false;
  }
  return true;
}

SEXP load_namespaces_body(void* data) {
  StreamDecode& decode = *static_cast<StreamDecode*>(data);
  decode.namespaces_loaded = namespaces_load(decode.namespaces);
  return R_NilValue;
}

SEXP decode_stream_body(void* data) {
  SEXP token = decode_stream_token(*static_cast<const StreamDecode*>(data));
  if (token != nullptr) R_ContinueUnwind(token);
  return R_NilValue;
}

SEXP stream_refused(SEXP, void*) { return R_NilValue; }

SEXP condition_classes(std::initializer_list<const char*> classes) {
  SEXP out = PROTECT(Rf_allocVector(STRSXP, static_cast<R_xlen_t>(classes.size())));
  R_xlen_t i = 0;
  for (const char* c : classes) SET_STRING_ELT(out, i++, Rf_mkChar(c));
  UNPROTECT(1);
  return out;
}

// Unserializes the region's stream into the list's table, as the first read
// of one of its objects would, but quietly: false, with nothing kept, when
// that fails here or warns (an ALTREP class this process lacks, which R
// would replace by an empty vector), or when a namespace it refers to does
// not load here (R would put .GlobalEnv in its place, saying nothing), or
// when its bytes are not a stream those can be read from. A warning while
// a namespace loads (its package's .onLoad) reaches the user, as it would
// from unserialize(), and does not stop the stream.
bool decode_stream_quietly(const ListHandle& handle, SEXP table) {
  const NodeView stream = handle.mapping->reader().node(0);
  bool recognized = false;
  const std::vector<std::string> names = namespaces_in_stream(
      static_cast<const uint8_t*>(stream.data()), static_cast<size_t>(stream.data_size()), recognized);
  if (!recognized) return false;
  cpp11::unwind_protect([&] {
    SEXP namespaces = PROTECT(Rf_allocVector(STRSXP, static_cast<R_xlen_t>(names.size())));
    for (size_t i = 0; i < names.size(); ++i)
      SET_STRING_ELT(namespaces, static_cast<R_xlen_t>(i),
                     Rf_mkCharLenCE(names[i].data(), static_cast<int>(names[i].size()), CE_UTF8));
    StreamDecode decode{&handle.mapping, table, namespaces, false};
    SEXP errors = PROTECT(condition_classes({"error"}));
    R_tryCatch(load_namespaces_body, &decode, errors, stream_refused, nullptr, nullptr, nullptr);
    if (decode.namespaces_loaded) {
      SEXP refused = PROTECT(condition_classes({"error", "warning"}));
      R_tryCatch(decode_stream_body, &decode, refused, stream_refused, nullptr, nullptr, nullptr);
      UNPROTECT(1);
    }
    UNPROTECT(2);
  });
  return serialized_object(table, 0) != nullptr;
}

// Whether the list holds an object of its region's stream that R keeps by
// reference (holds_references()). Unserializes the stream through the
// list's table when nothing did yet. Runs R code: call inside run_guarded().
//
// False too when the stream cannot be unserialized here as it was shared:
// no object of it then lives in this process for a list sent by value to
// keep one with (the table is its root's, and nothing of the stream is in
// it), and sent by name the list reaches the receiver whole, for it to read
// there (it may have the package this process lacks). By value, it would
// fail, or carry .GlobalEnv or an empty vector in place of what was shared.
// That answer alone is not final (nullopt): a read of an element may yet
// put the stream in the table.
std::optional<bool> tell_stream_references(SEXP x, const ListHandle& handle) {
  const RegionReader& reader = handle.mapping->reader();
  // A version 4 region keeps every object stored serialized in its stream,
  // node 0: one without a stream holds none, whatever the list's size.
  if (reader.header().format_version >= 4 &&
      (reader.node_count() == 0 || reader.node(0).kind() != format::NodeKind::Serialized))
    return false;
  std::vector<uint64_t> positions;
  if (!stream_positions(handle, positions)) return true;
  if (positions.empty()) return false;
  SEXP table = table_of(x);
  if (serialized_object(table, 0) == nullptr && !decode_stream_quietly(handle, table))
    return std::nullopt;
  SEXP stream = serialized_object(table, 0);
  if (TYPEOF(stream) != VECSXP) return true;
  for (uint64_t position : positions)
    if (position >= static_cast<uint64_t>(XLENGTH(stream)) ||
        holds_references(VECTOR_ELT(stream, static_cast<R_xlen_t>(position))))
      return true;
  return false;
}

// tell_stream_references(), told once per list: serialize() of the same
// list asks at every call.
bool holds_stream_references(SEXP x, ListHandle& handle) {
  if (!handle.stream_references) {
    std::optional<bool> told = tell_stream_references(x, handle);
    if (!told) return false;
    handle.stream_references = told;
  }
  return *handle.stream_references;
}

// An unchanged list travels as its region's name and node (the same state
// as a vector view), with its origin in remote mode as a view does: a data
// frame's columns then need no origin each (unless it holds serialized
// objects, below). A changed one travels by value,
// element by element, and so does a list a worker whose caller is on
// another host made (its name means nothing there).
SEXP list_state(SEXP x) {
  // Saved again, a list whose region could not be had keeps its reference.
  if (own_handle(x) == nullptr && unavailable_info(x) != nullptr) return unavailable_state(x);
  ListHandle& handle = open_handle(x);
  if (!list_view_unchanged(x) || !handle.mapping->name_opens_here()) return nullptr;
  // A list that holds an environment (or a closure, a formula) travels by
  // value too, element by element (its vectors still by name): sent by
  // name, it would be a root of its own in the receiver, with environments
  // of its own, apart from those the rest of the same serialize() stream
  // holds (the list's parent sent by value, a sibling view of the same
  // region), where an ordinary list's stream keeps one environment.
  bool by_value = false;
  run_guarded([&] {
    by_value = holds_stream_references(x, handle);
    return R_NilValue;
  });
  if (by_value) return nullptr;
  char origin[kOriginTextSize];
  origin_for_sending(handle.mapping->region(), origin, sizeof origin);
  if (origin[0] == '\0' && remote::names_may_not_travel()) return nullptr;
  // Sent by name to a forked child's parent or a pool worker's caller, the
  // region becomes the receiver's, as a vector view's does
  // (view_serialized_state()).
  handle.mapping->region().hand_over_for_sending();
  ErrorMessage message;
  capture_exception(message, [&] { note_named_mapping(handle.mapping); });
  if (message.set()) raise_r_error(message);
  // A named list's length is its names' (which travel as its attribute): it
  // needs no length field, and a data frame's state stays as short as a
  // vector's.
  const bool named = TYPEOF(Rf_getAttrib(x, R_NamesSymbol)) == STRSXP;
  return list_state_of(handle.mapping->region().name(), made_of(handle.mapping->region()),
                       handle.node.index(),
                       named ? std::nullopt : std::optional<uint64_t>(handle.node.length()),
                       origin);
}

// Never raises for a region that cannot be had (or a state it cannot read):
// the result is then an unavailable list, as for vectors (view_state.cpp),
// so a saved workspace still loads and a worker given one stays alive.
SEXP list_unserialize(SEXP, SEXP state) {
  IncomingList wanted{};
  ErrorMessage message;
  read_list_state(state, wanted, message);
  SEXP list = build_incoming_list(wanted, message, [](const auto& mapping, const NodeView& node) {
    // A root of its own: a table of its own, as unserialize() of an
    // ordinary list makes new environments.
    SEXP made = cpp11::unwind_protect([&] {
      SEXP table = PROTECT(new_serialized_objects());
      SEXP view = make_list_view(mapping, node, table);
      UNPROTECT(1);
      return view;
    });
    remember_mapping(mapping);
    return made;
  });
  if (list != nullptr) {
    record_foreign_origin(wanted.origin);
    return list;
  }
  if (!wanted.origin.remote) add_remote_mode_hint(message);
  list = PROTECT(make_unavailable_object(list_cls, state, wanted.region, message.text));
  if (wanted.recorded_length >= 0)
    R_SetExternalPtrTag(R_altrep_data1(list), Rf_ScalarReal(wanted.recorded_length));
  UNPROTECT(1);
  return list;
}

// A copy of an unchanged list is another view of the same node, holding the
// elements decoded so far (a shallow copy shares them, as R's own would); a
// changed list is copied by R into an ordinary list, and so is a deep copy
// of a list whose elements C code wrote into (it would decode them afresh).
// A writable share's list decodes every element first: the copy and the
// list then share each element object, so that a copy R makes of one of
// them to write knows what it was copied from, and what R may still read
// (`d[o, ] <- d`, writable_copies.h).
SEXP list_duplicate(SEXP x, Rboolean deep) {
  ListHandle& handle = open_handle(x);
  if (handle.written || (deep && !list_view_unchanged(x))) return nullptr;
  // R's deep copy keeps an environment the list holds (the same object in
  // both lists); a new view would unserialize it anew, into another one.
  // R's own copy reads every element from this list instead.
  if (deep && holds_serialized(handle)) return nullptr;
  if (!deep && handle.mapping->region().access() == Access::SharedWritable) materialized(x);
  // The copy shares the list's table: an environment read later through
  // either is the one the other reads, as R's copy of an ordinary list
  // holds the same environment.
  SEXP table = table_of(x);
  SEXP copy = PROTECT(run_guarded([&] {
    return cpp11::unwind_protect([&] { return make_list_view(handle.mapping, handle.node, table); });
  }));
  SEXP cache = R_altrep_data2(x);
  if (!deep && cache != R_NilValue) R_set_altrep_data2(copy, Rf_shallow_duplicate(cache));
  UNPROTECT(1);
  return copy;
}

Rboolean list_inspect(SEXP x, int, int, int, void (*)(SEXP, int, int, int)) {
  ListHandle* handle = own_handle(x);
  if (handle == nullptr) {
    Rprintf(unavailable_info(x) != nullptr ? " shmr list (region unavailable)\n"
                                            : " shmr list (released)\n");
  } else {
    Rprintf(" shmr list of %s node %llu%s%s\n", handle->mapping->region().name().c_str(),
            static_cast<unsigned long long>(handle->node.index()),
            handle->written ? " (changed)" : "", handle->mapping->is_closed() ? " (closed)" : "");
  }
  return TRUE;
}

}  // namespace

void init_list_view_class(DllInfo* dll) {
  // Named like the package: R writes a class's name and its package's into
  // every serialized object, and the second time the same symbol costs 4
  // bytes instead of 16.
  list_cls = R_make_altlist_class("shmr", "shmr", dll);
  R_set_altrep_Length_method(list_cls, list_length);
  R_set_altrep_Inspect_method(list_cls, list_inspect);
  R_set_altrep_Serialized_state_method(list_cls, list_state);
  R_set_altrep_Unserialize_method(list_cls, list_unserialize);
  R_set_altrep_Duplicate_method(list_cls, list_duplicate);
  R_set_altvec_Dataptr_method(list_cls, list_dataptr);
  R_set_altvec_Dataptr_or_null_method(list_cls, list_dataptr_or_null);
  R_set_altlist_Elt_method(list_cls, list_elt);
  R_set_altlist_Set_elt_method(list_cls, list_set_elt);
}

SEXP make_list_view(const std::shared_ptr<Mapping>& mapping, const NodeView& node, SEXP table) {
  // The table in the pointer's protected value: the garbage collector sees
  // what it keeps through the list (serialized_objects.h).
  SEXP pointer = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, table));
  R_RegisterCFinalizerEx(pointer, finalize_handle, TRUE);
  ListHandle* handle = nullptr;
  try {
    auto made = std::make_unique<ListHandle>(ListHandle{mapping, node});
    // A list reads its mapping as a vector view does: map_shared() of the
    // same region must take another, so that close() of one result closes
    // nothing the other reads.
    mapping->add_view(node.index());
    handle = made.release();
  } catch (...) {
    handle = nullptr;
  }
  if (handle == nullptr) Rf_error("shmr: out of memory creating a shared list");
  R_SetExternalPtrAddr(pointer, handle);
  SEXP list = R_new_altrep(list_cls, pointer, R_NilValue);
  UNPROTECT(1);
  return list;
}

ListHandle* list_view_handle(SEXP x) {
  if (!ALTREP(x) || TYPEOF(x) != VECSXP || !R_altrep_inherits(x, list_cls)) return nullptr;
  SEXP pointer = R_altrep_data1(x);
  if (TYPEOF(pointer) != EXTPTRSXP) return nullptr;
  return static_cast<ListHandle*>(R_ExternalPtrAddr(pointer));
}

SEXP list_view_decoded_elements(SEXP x) { return R_altrep_data2(x); }

bool is_unavailable_list(SEXP x) {
  return ALTREP(x) && TYPEOF(x) == VECSXP && R_altrep_inherits(x, list_cls) &&
         TYPEOF(R_altrep_data1(x)) == EXTPTRSXP && R_ExternalPtrAddr(R_altrep_data1(x)) == nullptr &&
         unavailable_info(x) != nullptr;
}

#else  // R without ALTLIST: shared lists are ordinary lists (list_registry.h).

namespace {

R_altrep_class_t foreign_list_cls;

// A list that a process on R >= 4.3 serialized by name (saveRDS(), a worker
// or a caller on that R) reaches this R as an ALTREP object of class "shmr",
// which R would replace by an empty list with a mere warning. Read here, it
// becomes what map_shared() of its node gives on this R: an ordinary list of
// views, given the attributes the stream carries (names, class, row.names). A
// region that cannot be had never raises here (a daemon given one must stay
// alive, a saved workspace must load): the list then keeps its length (its
// names', or the one its state records) and each element is one unavailable
// vector, which raises its error of class shmr_region_unavailable when read.
SEXP foreign_list_unserialize(SEXP, SEXP state, SEXP attributes, int object, int levels) {
  IncomingList wanted{};
  ErrorMessage message;
  read_list_state(state, wanted, message);
  SEXP list = build_incoming_list(wanted, message, [](const auto& mapping, const NodeView& node) {
    return decode_object(mapping, node.index());
  });
  if (list != nullptr) {
    record_foreign_origin(wanted.origin);
  } else {
    if (!wanted.origin.remote) add_remote_mode_hint(message);
    SEXP element = PROTECT(make_unavailable_object(*view_class_for(format::NodeKind::Logical), state,
                                                   wanted.region, message.text));
    R_xlen_t length = wanted.recorded_length >= 0 ? static_cast<R_xlen_t>(wanted.recorded_length) : 0;
    for (SEXP cell = attributes; wanted.recorded_length < 0 && TYPEOF(cell) == LISTSXP; cell = CDR(cell))
      if (TAG(cell) == R_NamesSymbol && TYPEOF(CAR(cell)) == STRSXP) length = XLENGTH(CAR(cell));
    list = Rf_allocVector(VECSXP, length);
    for (R_xlen_t i = 0; i < length; ++i) SET_VECTOR_ELT(list, i, element);
    UNPROTECT(1);
  }
  PROTECT(list);
  SET_ATTRIB(list, attributes);
  SET_OBJECT(list, object);
  SETLEVELS(list, levels);
  UNPROTECT(1);
  return list;
}

}  // namespace

void init_list_view_class(DllInfo* dll) {
  // R before 4.3 has no ALTREP list class to register, and checks a class
  // found for an object against the type the stream records, warning at
  // every object of another. The class is made as an integer one (it never
  // makes an object: it only reads streams), then given the list type its
  // streams record, in the record R 4.0 to 4.2 keep of every class
  // (altrep.c: its attributes are the class, package and type). Left as it
  // is when that record is not what those versions make: a warning per list
  // then, still with the right data.
  foreign_list_cls = R_make_altinteger_class("shmr", "shmr", dll);
  R_set_altrep_UnserializeEX_method(foreign_list_cls, foreign_list_unserialize);
  SEXP record = ATTRIB(R_SEXP(foreign_list_cls));
  if (TYPEOF(record) == LISTSXP && Rf_length(record) == 3) {
    SEXP type = CADDR(record);
    if (TYPEOF(type) == INTSXP && XLENGTH(type) == 1 && INTEGER(type)[0] == INTSXP)
      INTEGER(type)[0] = VECSXP;
  }
}

SEXP make_list_view(const std::shared_ptr<Mapping>&, const NodeView&, SEXP) {
  Rf_error("shmr: internal error: no ALTREP lists in this R");
}

ListHandle* list_view_handle(SEXP) { return nullptr; }

bool is_unavailable_list(SEXP) { return false; }

SEXP list_view_decoded_elements(SEXP) { return R_NilValue; }

#endif

}  // namespace shmr::glue
