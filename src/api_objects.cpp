// .Call entry points for shared objects: share, map, name, info, close,
// fetch. Each is a SHMR_BEGIN / SHMR_END block: C++ exceptions become R
// errors after all destructors ran.
#include <cpp11/list.hpp>
#include <cpp11/sexp.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "api_support.h"
#include "attributes.h"
#include "core/names.h"
#include "core/object_paths.h"
#include "core/store.h"
#include "decode.h"
#include "decoded_check.h"
#include "encode.h"
#include "fetch.h"
#include "list_registry.h"
#include "list_view.h"
#include "r_api.h"
#include "view.h"

using namespace shmr;
using namespace shmr::glue;

namespace {

// An explicit stack, so a deeply nested list cannot overflow the C stack.
// Only ordinary lists are walked (an ALTREP one answers at once), so no R
// call here can raise or allocate.
bool contains_altrep(SEXP root) {
  std::vector<SEXP> pending{root};
  while (!pending.empty()) {
    SEXP x = pending.back();
    pending.pop_back();
    if (ALTREP(x)) return true;
    for_each_attribute(x, [&](SEXP, SEXP value) { pending.push_back(value); });
    if (TYPEOF(x) == VECSXP)
      for (R_xlen_t i = 0, n = XLENGTH(x); i < n; ++i) pending.push_back(VECTOR_ELT(x, i));
  }
  return false;
}

// True when x's attributes are the ones its node holds, so that map_shared()
// of its name gives x back. Changing an attribute of a shared object in
// place (names<-, dimnames<-, class<-) changes only this process's object.
bool attributes_as_shared(SEXP x, const Origin& origin) {
  return attributes_as_stored(x, origin.mapping, origin.node);
}

// True when map_shared() of x's region and node gives x back. Not so when
// the mapping was detached from its name (bettermc's allocate_from_shm()
// removed it) or the name now leads to another region: that name would give
// nothing, or other data.
bool reads_as_shared(SEXP x, const Origin& origin) {
  if (!origin.mapping->name_still_leads_here()) return false;
  ViewHandle* handle = view_handle(unwrapped(x));
  if (handle != nullptr && view_holds_own_writes(*handle)) return false;
  if (list_view_handle(x) != nullptr && !list_view_unchanged(x)) return false;
  return attributes_as_shared(x, origin);
}

}  // namespace

extern "C" SEXP shmr_share(SEXP x, SEXP original_class, SEXP options) {
  SHMR_BEGIN
  collect_if_many_mappings();
  return with_messages([&]() -> SEXP {
    // A writable share asked for as read-only gets a read-only region of its own.
    if (as_logical(list_field(options, "reuse")) == TRUE) {
      Origin origin = origin_of(x);
      // Nor is an object whose region's name is gone (its creator exited and
      // prune_shared() removed it, say) handed back: no other process could
      // open it by that name.
      if (origin.mapping && origin.mapping->region().access() != Access::SharedWritable &&
          reads_as_shared(x, origin) && origin.mapping->name_opens_here())
        return x;
    }
    check_room_for_new_mapping();
    CreateOptions create = create_options(options);
    EncodedObject encoded;
    describe_object(x, encoded, create.writable);
    encoded.description.original_class = as_string(original_class);
    auto mapping = std::make_shared<Mapping>(create_region(encoded.description, create));
    mapping->hold(std::move(encoded.named_mappings));
    SEXP shared = decode_object(mapping, mapping->reader().root());
    // Without ALTREP lists (R < 4.3) nothing can follow a list that holds no
    // view: a region the user named stays published until exit.
    if (!have_list_views() && TYPEOF(shared) == VECSXP && mapping.use_count() == 1 &&
        !create.name.empty())
      keep_until_exit(mapping);
    return shared;
  });
  SHMR_END
}

namespace {

// A vector whose class attribute names its package was an S4 object when it
// was shared (share() writes it as a plain vector): it is one again.
SEXP as_s4_again(SEXP x) {
  if (!Rf_isVectorAtomic(x) || Rf_isS4(x)) return x;
  SEXP class_names = Rf_getAttrib(x, R_ClassSymbol);
  if (class_names == R_NilValue) return x;
  PROTECT(x);
  const bool names_package = Rf_getAttrib(class_names, Rf_install("package")) != R_NilValue;
  SEXP out = names_package ? Rf_asS4(x, TRUE, TRUE) : x;
  UNPROTECT(1);
  return out;
}

}  // namespace

// map_shared(): NULL for anything but one string, as for a malformed name.
extern "C" SEXP shmr_map(SEXP name) {
  if (TYPEOF(name) != STRSXP || XLENGTH(name) != 1 || STRING_ELT(name, 0) == NA_STRING)
    return R_NilValue;
  SHMR_BEGIN
  collect_if_many_mappings();
  SEXP object = with_messages([&]() -> SEXP {
    const std::string text = as_string(name);
    auto path = names::parse_path(region_name_for(text));
    if (!path) return R_NilValue;
    // A name without the prefix is a name of the user's choosing only when
    // such a region exists; otherwise it is not a shmr name at all (NULL,
    // as for any other malformed name). A prefixed name must exist.
    const bool chosen = text.compare(0, std::strlen(names::kPrefix), names::kPrefix) != 0;
    std::shared_ptr<Mapping> mapping;
    bool copy = false;
    try {
      mapping = open_mapping(path->region);
    } catch (const MappingLimitReached&) {
      // Past the limit a further object of a region mapped already holds a
      // copy, read through a mapping this process has.
      mapping = mapping_for_unserialize(path->region);
      copy = true;
    } catch (const Error& e) {
      if (chosen && e.kind() == ErrorKind::NotFound) return R_NilValue;
      throw;
    }
    uint64_t node = resolve_object_path(mapping->reader(), path->steps);
    return copy ? decode_copy(mapping, node) : decode_object(mapping, node);
  });
  // Only plain data is live here: an R error in PROTECT() skips nothing.
  PROTECT(object);
  SEXP result = cpp11::safe[as_s4_again](object);
  UNPROTECT(1);
  return result;
  SHMR_END
}

extern "C" SEXP shmr_is_shared(SEXP x) {
  SHMR_BEGIN
  // The Origin (a shared_ptr) is gone before R allocates the answer.
  const bool shared = origin_of(x).mapping != nullptr;
  return cpp11::safe[Rf_ScalarLogical](shared);
  SHMR_END
}

extern "C" SEXP shmr_name(SEXP x) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    Origin origin = origin_of(x);
    if (!origin.mapping || !reads_as_shared(x, origin)) return R_NilValue;
    names::ObjectPath path;
    path.region = origin.mapping->region().name();
    auto steps = find_object_path(origin.mapping->reader(), origin.node);
    if (!steps) return R_NilValue;
    path.steps = std::move(*steps);
    return cpp11::as_sexp(names::format_path(path));
  });
  SHMR_END
}

extern "C" SEXP shmr_info(SEXP x) {
  SHMR_BEGIN
  using namespace cpp11::literals;
  Origin origin = origin_of(x);
  if (!origin.mapping) return R_NilValue;
  const MappedRegion& region = origin.mapping->region();
  const format::RegionHeader& header = region.reader().header();
  std::string cls(header.original_class, strnlen(header.original_class, sizeof header.original_class));
  return cpp11::writable::list({
      "name"_nm = region.name(),
      "backing"_nm = backing_name(region.location().backing),
      "path"_nm = region.location().data_path(),
      "size"_nm = static_cast<double>(header.total_size),
      "readonly"_nm = (header.flags & format::kFlagReadonly) != 0,
      "persistent"_nm = (header.flags & format::kFlagPersistent) != 0,
      "creator_pid"_nm = static_cast<double>(header.creator_pid),
      "format_version"_nm = static_cast<int>(header.format_version),
      "class"_nm = cls,
      "owner"_nm = region.is_owner(),
      "node"_nm = static_cast<double>(origin.node),
  });
  SHMR_END
}

// For an object unserialized while its region could not be had: its
// region and why, as its error would say; NULL for anything else.
extern "C" SEXP shmr_unavailable(SEXP x) {
  SHMR_BEGIN
  using namespace cpp11::literals;
  if (!is_unavailable(x) && !is_unavailable_list(x)) return R_NilValue;
  SEXP info = unavailable_info(x);
  return cpp11::writable::list({"region"_nm = VECTOR_ELT(info, 0), "reason"_nm = VECTOR_ELT(info, 1)});
  SHMR_END
}

// "shm" or "mmap" for a shared object, NULL otherwise: what share() asks
// after every share, without building shared_info()'s list.
extern "C" SEXP shmr_backing(SEXP x) {
  SHMR_BEGIN
  Origin origin = origin_of(x);
  if (!origin.mapping) return R_NilValue;
  return Rf_mkString(backing_name(origin.mapping->region().location().backing));
  SHMR_END
}

// NA when `x` reads no region; else "" when its region was closed (and,
// for its creator, removed), or the file that stays and why.
extern "C" SEXP shmr_close(SEXP x) {
  SHMR_BEGIN
  Origin origin = origin_of(x);
  if (!origin.mapping) return cpp11::safe[Rf_ScalarString](NA_STRING);
  origin.mapping->region().close();
  forget_lists_of(origin.mapping.get());
  const std::string files_left = origin.mapping->region().files_left();
  // Allocating may raise: through safe, so `origin` is released all the same.
  return cpp11::safe[Rf_mkString](files_left.c_str());
  SHMR_END
}

// The copy, and the environments and closures it holds: list(copy,
// references). R/fetch.R decides which of those to copy.
extern "C" SEXP shmr_fetch_first(SEXP x) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] { return fetch_copy_and_references(x); });
  SHMR_END
}

// `from` and `to`: the environments and closures to replace (two lists of
// equal length; R/fetch.R makes the copies).
extern "C" SEXP shmr_fetch(SEXP x, SEXP from, SEXP to) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] {
    SEXP storage = R_NilValue;
    Replacements replacements = replacements_of(from, to, &storage);
    PROTECT(storage);
    SEXP copy = fetch_copy(x, replacements);
    UNPROTECT(1);
    return copy;
  });
  SHMR_END
}

extern "C" SEXP shmr_fetch_reach(SEXP x) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] { return fetch_reach(x); });
  SHMR_END
}

// Elements [first, first + count) of the shared vector `x` as a zero-copy
// view, or NULL when `x` is not a whole fixed-width view.
extern "C" SEXP shmr_slice(SEXP x, SEXP first, SEXP count) {
  SHMR_BEGIN
  double from = as_real(first);
  double n = as_real(count);
  if (ISNAN(from) || ISNAN(n) || from < 0 || n < 0) return R_NilValue;
  SEXP slice = cpp11::unwind_protect(
      [&] { return make_slice(x, static_cast<uint64_t>(from), static_cast<uint64_t>(n)); });
  return slice == nullptr ? R_NilValue : slice;
  SHMR_END
}

// For tests: is any vector inside `x` (elements, attributes) an ALTREP?
extern "C" SEXP shmr_contains_altrep(SEXP x) {
  SHMR_BEGIN
  return Rf_ScalarLogical(contains_altrep(x));
  SHMR_END
}

// For tests: the mapping registry's counts (mapping.h).
extern "C" SEXP shmr_mapping_stats() {
  SHMR_BEGIN
  using namespace cpp11::literals;
  MappingStats stats = mapping_stats();
  return cpp11::writable::list({
      "live"_nm = static_cast<double>(stats.live),
      "groups"_nm = static_cast<double>(stats.groups),
      "idle"_nm = static_cast<double>(stats.idle),
      "examined"_nm = static_cast<double>(stats.examined),
      "collections"_nm = static_cast<double>(stats.collections),
  });
  SHMR_END
}
