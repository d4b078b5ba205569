// The .Call entry points. Each one is a BEGIN_CPP11 / END_CPP11 block: C++
// exceptions become R errors after all destructors ran.
#include "r_api.h"
#include <cpp11/declarations.hpp>
#include <cpp11/list.hpp>
#include <cpp11/sexp.hpp>
#include <cpp11/strings.hpp>

#include <string>

#include "core/error.h"
#include "core/names.h"
#include "core/object_paths.h"
#include "core/store.h"
#include "decode.h"
#include "encode.h"
#include "fetch.h"
#include "attributes.h"
#include "list_registry.h"
#include "view.h"

namespace shmr::glue {
namespace {

struct Origin {
  std::shared_ptr<Mapping> mapping;
  uint64_t node = 0;
};

Origin origin_of(SEXP x) {
  if (ViewHandle* view = view_handle(x)) {
    if (view->mapping->is_closed()) return {};
    return {view->mapping, view->node.index()};
  }
  ListOrigin list = find_list(x);
  return {list.mapping, list.node};
}

std::string as_name(SEXP x) {
  if (TYPEOF(x) != STRSXP || XLENGTH(x) != 1 || STRING_ELT(x, 0) == NA_STRING) return {};
  return CHAR(STRING_ELT(x, 0));
}

// Runs `body`, re-throwing engine errors with the "shmr: " prefix users grep for.
template <typename Body>
SEXP with_messages(Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throw std::runtime_error(std::string("shmr: ") + e.what());
  }
}

}  // namespace
}  // namespace shmr::glue

using namespace shmr;
using namespace shmr::glue;

extern "C" SEXP shmr_share(SEXP x, SEXP original_class) {
  BEGIN_CPP11
  return with_messages([&]() -> SEXP {
    if (origin_of(x).mapping) return x;
    EncodedObject encoded;
    describe_object(x, encoded);
    encoded.description.flags = format::kFlagReadonly;
    encoded.description.original_class = as_name(original_class);
    CreateOptions options;
    options.directory = shm_directory();
    auto mapping = std::make_shared<Mapping>(create_region(encoded.description, options));
    return decode_object(mapping, mapping->reader().root());
  });
  END_CPP11
}

extern "C" SEXP shmr_map(SEXP name) {
  BEGIN_CPP11
  return with_messages([&]() -> SEXP {
    auto path = names::parse_path(as_name(name));
    if (!path) return R_NilValue;
    auto mapping = open_mapping(path->region);
    uint64_t node = resolve_object_path(mapping->reader(), path->steps);
    return decode_object(mapping, node);
  });
  END_CPP11
}

extern "C" SEXP shmr_is_shared(SEXP x) {
  BEGIN_CPP11
  return Rf_ScalarLogical(origin_of(x).mapping != nullptr);
  END_CPP11
}

extern "C" SEXP shmr_name(SEXP x) {
  BEGIN_CPP11
  return with_messages([&]() -> SEXP {
    Origin origin = origin_of(x);
    if (!origin.mapping) return R_NilValue;
    names::ObjectPath path;
    path.region = origin.mapping->region().name();
    auto steps = find_object_path(origin.mapping->reader(), origin.node);
    if (!steps) return R_NilValue;
    path.steps = std::move(*steps);
    return cpp11::as_sexp(names::format_path(path));
  });
  END_CPP11
}

extern "C" SEXP shmr_info(SEXP x) {
  BEGIN_CPP11
  using namespace cpp11::literals;
  Origin origin = origin_of(x);
  if (!origin.mapping) return R_NilValue;
  const MappedRegion& region = origin.mapping->region();
  const format::RegionHeader& header = region.reader().header();
  std::string cls(header.original_class, strnlen(header.original_class, sizeof header.original_class));
  return cpp11::writable::list({
      "name"_nm = region.name(),
      "backing"_nm = "shm",
      "path"_nm = region_path(region.directory(), region.name()),
      "size"_nm = static_cast<double>(header.total_size),
      "readonly"_nm = (header.flags & format::kFlagReadonly) != 0,
      "creator_pid"_nm = static_cast<double>(header.creator_pid),
      "format_version"_nm = static_cast<int>(header.format_version),
      "class"_nm = cls,
      "owner"_nm = region.is_owner(),
      "node"_nm = static_cast<double>(origin.node),
  });
  END_CPP11
}

extern "C" SEXP shmr_close(SEXP x) {
  BEGIN_CPP11
  Origin origin = origin_of(x);
  if (!origin.mapping) return Rf_ScalarLogical(FALSE);
  origin.mapping->region().close();
  forget_lists_of(origin.mapping.get());
  return Rf_ScalarLogical(TRUE);
  END_CPP11
}

extern "C" SEXP shmr_fetch(SEXP x) {
  BEGIN_CPP11
  return cpp11::unwind_protect([&] { return fetch_copy(x); });
  END_CPP11
}

extern "C" SEXP shmr_regions() {
  BEGIN_CPP11
  using namespace cpp11::literals;
  auto regions = list_regions(shm_directory());
  cpp11::writable::strings name;
  cpp11::writable::doubles bytes, pid, created;
  cpp11::writable::logicals alive, persistent, complete;
  for (const RegionSummary& r : regions) {
    name.push_back(r.name);
    bytes.push_back(static_cast<double>(r.size));
    pid.push_back(r.valid || r.temporary ? static_cast<double>(r.creator.pid) : NA_REAL);
    alive.push_back(r.valid || r.temporary ? cpp11::r_bool(r.creator_alive) : cpp11::r_bool(NA_LOGICAL));
    persistent.push_back(cpp11::r_bool(r.persistent));
    complete.push_back(cpp11::r_bool(r.valid));
    created.push_back(r.valid ? static_cast<double>(r.created_unix_ms) / 1000.0 : NA_REAL);
  }
  return cpp11::writable::list({"name"_nm = name, "bytes"_nm = bytes, "creator_pid"_nm = pid,
                                "creator_alive"_nm = alive, "persistent"_nm = persistent,
                                "complete"_nm = complete, "created"_nm = created});
  END_CPP11
}

extern "C" SEXP shmr_prune() {
  BEGIN_CPP11
  auto removed = prune_regions(shm_directory());
  cpp11::writable::strings out;
  for (const std::string& name : removed) out.push_back(name);
  return out;
  END_CPP11
}

extern "C" SEXP shmr_release_all() {
  BEGIN_CPP11
  release_all_owned_regions();
  return R_NilValue;
  END_CPP11
}

namespace {

bool contains_altrep(SEXP x) {
  if (ALTREP(x)) return true;
  bool found = false;
  shmr::glue::for_each_attribute(x, [&](SEXP, SEXP value) { found = found || contains_altrep(value); });
  if (found) return true;
  if (TYPEOF(x) == VECSXP)
    for (R_xlen_t i = 0; i < XLENGTH(x); ++i)
      if (contains_altrep(VECTOR_ELT(x, i))) return true;
  return false;
}

}  // namespace

// For tests: is any vector inside `x` (elements, attributes) an ALTREP?
extern "C" SEXP shmr_contains_altrep(SEXP x) {
  BEGIN_CPP11
  return Rf_ScalarLogical(contains_altrep(x));
  END_CPP11
}
