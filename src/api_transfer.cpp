// Passing regions between processes: a pool worker writes a large result
// into a region made for the caller (the caller named as its creator, its
// file in the caller's directory) and leaves it; the caller adopts it, so
// the result crosses as a name and is removed with the caller's object.
// Hand-off regions carry a name prefix per call, so those the caller never
// adopted (it was interrupted, or the reply was lost) are found and removed.
// Shared objects a worker made itself and returns become the caller's as the
// reply is written (shmr_set_reply_recipient()); those it closed are found
// before the reply is written, which they would break.
#include <cpp11/sexp.hpp>

#include <dirent.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "api_support.h"
#include "core/listing.h"
#include "core/names.h"
#include "core/ownership.h"
#include "core/process.h"
#include "core/store.h"
#include "decode.h"
#include "encode.h"
#include "list_view.h"
#include "r_api.h"
#include "view.h"

using namespace shmr;
using namespace shmr::glue;

namespace {

// "<pid>:<start ticks>:<PID namespace>", exact (R's doubles are not).
std::string format_identity(const process::Identity& who) {
  char text[96];
  std::snprintf(text, sizeof text, "%" PRId64 ":%" PRIu64 ":%" PRIu64, who.pid, who.start_ticks,
                who.pid_namespace);
  return text;
}

process::Identity parse_identity(const std::string& text) {
  process::Identity who;
  long long pid = 0;
  unsigned long long ticks = 0, ns = 0;
  if (std::sscanf(text.c_str(), "%lld:%llu:%llu", &pid, &ticks, &ns) != 3 || pid <= 0)
    throw Error(ErrorKind::InvalidArgument, "invalid process identity '" + text + "'");
  who.pid = pid;
  who.start_ticks = ticks;
  who.pid_namespace = ns;
  return who;
}

SEXP create_unkept(SEXP x, SEXP original_class, const CreateOptions& options,
                   const process::Identity* owner) {
  EncodedObject encoded;
  describe_object(x, encoded, options.writable);
  encoded.description.original_class = as_string(original_class);
  auto region = create_region(encoded.description, options);
  std::string name = region->name();
  // Closing keeps the region (Removal::Keep) but drops this process's
  // claim; the new owner is recorded first, so that no moment exists when
  // the region is nobody's to prune.
  try {
    if (owner != nullptr) assign_creator(region->location(), *owner);
  } catch (...) {
    region->close(Removal::Remove);
    throw;
  }
  region->close(Removal::Keep);
  return cpp11::as_sexp(name);
}

// Deeper than this, a value is not looked into (R's serialize() recurses
// as deep, but results that deep are not seen in practice).
constexpr int kMaxResultDepth = 64;

// Calls visit(object, mapping) for each shared object in `x`, looking into
// lists, attributes and through R's wrapper, not into environments; the
// mapping is nullptr for a view that was released. Stops at, and returns,
// the first true answer.
template <typename Visit>
bool any_shared_in(SEXP x, int depth, const Visit& visit) {
  if (depth > kMaxResultDepth) return false;
  SEXP inner = unwrapped(x);
  if (ALTREP(inner)) {
    if (is_view(inner)) {
      ViewHandle* view = view_handle(inner);
      if (visit(inner, view == nullptr ? nullptr : view->mapping.get())) return true;
    } else if (ListHandle* list = list_view_handle(inner)) {
      if (visit(inner, list->mapping.get())) return true;
      // A list changed here travels by value, with the elements it holds.
      SEXP decoded = list_view_decoded_elements(inner);
      if (list->written && TYPEOF(decoded) == VECSXP) {
        for (R_xlen_t i = 0; i < XLENGTH(decoded); ++i)
          if (any_shared_in(VECTOR_ELT(decoded, i), depth + 1, visit)) return true;
      }
    }
  } else if (TYPEOF(inner) == VECSXP || TYPEOF(inner) == EXPRSXP) {
    for (R_xlen_t i = 0; i < XLENGTH(inner); ++i)
      if (any_shared_in(VECTOR_ELT(inner, i), depth + 1, visit)) return true;
  }
  for (SEXP a = ATTRIB(x); a != R_NilValue; a = CDR(a))
    if (any_shared_in(CAR(a), depth + 1, visit)) return true;
  return false;
}

// True when `x` holds a shared object that can no longer be read (closed,
// or released), which serialize() would stop at with an error: in a pool
// worker's reply, that error would break the reply stream and end the
// worker.
bool holds_unreadable_object(SEXP x) {
  return any_shared_in(x, 0, [](SEXP object, const Mapping* mapping) {
    return mapping == nullptr ? !is_unavailable(object) : mapping->is_closed();
  });
}

}  // namespace

// A region nobody owns (bettermc's copy2shm() makes persistent ones).
extern "C" SEXP shmr_share_handoff(SEXP x, SEXP original_class, SEXP options) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    return create_unkept(x, original_class, create_options(options), nullptr);
  });
  SHMR_END
}

// This process's identity, for workers to name it as their results' owner.
extern "C" SEXP shmr_process_identity() {
  SHMR_BEGIN
  return cpp11::as_sexp(format_identity(process::current()));
  SHMR_END
}

// target: list(owner = <identity>, prefix = <name prefix of the call>).
extern "C" SEXP shmr_hand_off(SEXP x, SEXP original_class, SEXP options, SEXP target) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    const process::Identity owner = parse_identity(as_string(list_field(target, "owner")));
    CreateOptions create = create_options(options);
    const std::string random = names::generate().substr(std::string(names::kPrefix).size(), 16);
    create.name = as_string(list_field(target, "prefix")) + random;
    if (!names::is_valid_region_name(create.name))
      throw Error(ErrorKind::InvalidArgument, "invalid hand-off name '" + create.name + "'");
    return create_unkept(x, original_class, create, &owner);
  });
  SHMR_END
}

// The caller a pool worker replies to, as an identity from
// shmr_process_identity(), or NULL for none: shared objects this worker made
// and sends by name from now on become that caller's (hand_over_for_sending()).
extern "C" SEXP shmr_set_reply_recipient(SEXP identity) {
  SHMR_BEGIN
  set_reply_recipient(identity == R_NilValue ? process::Identity{}
                                             : parse_identity(as_string(identity)));
  return R_NilValue;
  SHMR_END
}

// Positions (1-based) of the elements of the list `results` that hold a
// shared object that was closed or released.
extern "C" SEXP shmr_unreadable_results(SEXP results) {
  SHMR_BEGIN
  // The walk reads, and calls nothing of R's that can raise.
  std::vector<int> positions;
  const R_xlen_t n = TYPEOF(results) == VECSXP && !ALTREP(results) ? XLENGTH(results) : 0;
  for (R_xlen_t i = 0; i < n; ++i)
    if (holds_unreadable_object(VECTOR_ELT(results, i)))
      positions.push_back(static_cast<int>(i + 1));
  return cpp11::unwind_protect([&] {
    SEXP out = Rf_allocVector(INTSXP, static_cast<R_xlen_t>(positions.size()));
    std::copy(positions.begin(), positions.end(), INTEGER(out));
    return out;
  });
  SHMR_END
}

// For each shared object in the list `objects`, whether a shared object in
// `values` reads its region: a pool call keeps the regions it made for its
// arguments that its results still read (FUN returned a part unchanged).
extern "C" SEXP shmr_regions_read_by(SEXP values, SEXP objects) {
  SHMR_BEGIN
  std::vector<std::string> names;
  const R_xlen_t n = TYPEOF(objects) == VECSXP && !ALTREP(objects) ? XLENGTH(objects) : 0;
  for (R_xlen_t i = 0; i < n; ++i) {
    Origin origin = origin_of(VECTOR_ELT(objects, i));
    names.push_back(origin.mapping && !origin.mapping->is_closed()
                        ? origin.mapping->region().name() : std::string());
  }
  std::vector<int> read(names.size(), 0);
  // The walk reads, and calls nothing of R's that can raise.
  any_shared_in(values, 0, [&](SEXP, const Mapping* mapping) {
    if (mapping == nullptr || mapping->is_closed()) return false;
    const std::string& name = mapping->region().name();
    for (size_t i = 0; i < names.size(); ++i)
      if (!names[i].empty() && names[i] == name) read[i] = 1;
    return false;
  });
  return cpp11::unwind_protect([&] {
    SEXP out = Rf_allocVector(LGLSXP, static_cast<R_xlen_t>(read.size()));
    std::copy(read.begin(), read.end(), LOGICAL(out));
    return out;
  });
  SHMR_END
}

extern "C" SEXP shmr_adopt(SEXP name) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    std::string region = region_name_for(as_string(name));
    auto owner = claim_region(locate_region(shm_directory(), region), false);
    // A new mapping attaches the claim just made; from then on the mapping
    // keeps it alive.
    auto mapping = open_new_mapping(region);
    return decode_object(mapping, mapping->reader().root());
  });
  SHMR_END
}

// Removes the regions whose names start with `prefix` that this process
// has not adopted. Returns how many.
extern "C" SEXP shmr_discard_handoffs(SEXP prefix) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    const std::string start = as_string(prefix);
    if (start.size() <= std::string(names::kPrefix).size())
      throw Error(ErrorKind::InvalidArgument, "invalid hand-off prefix");
    const std::string directory = shm_directory();
    std::vector<std::string> left;
    {
      std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(directory.c_str()), ::closedir);
      if (!dir) return Rf_ScalarInteger(0);
      while (struct dirent* entry = ::readdir(dir.get())) {
        std::string file = entry->d_name;
        if (file.compare(0, start.size(), start) == 0) left.push_back(file);
      }
    }
    int removed = 0;
    for (const std::string& name : left)
      if (!owner_of(region_path(directory, name)) &&
          remove_region(directory, name) == RemovalByName::Removed)
        ++removed;
    return Rf_ScalarInteger(removed);
  });
  SHMR_END
}
