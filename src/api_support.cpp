#include "api_support.h"

#include <cpp11/protect.hpp>

#include <sys/mman.h>

#include <cstring>

#include "core/names.h"
#include "core/store.h"
#include "list_registry.h"
#include "list_view.h"
#include "view.h"

namespace shmr::glue {

Origin origin_of(SEXP x) {
  x = unwrapped(x);
  if (ViewHandle* view = view_handle(x)) {
    // A slice is part of a node, not an object of the region; a private
    // copy of a writable share no longer reads the region.
    if (view->mapping->is_closed() || view->is_slice() || view->holds_private_values())
      return {};
    return {view->mapping, view->node.index()};
  }
  if (ListHandle* list = list_view_handle(x)) {
    // A list changed in this process no longer reads its region.
    if (list->written || list->mapping->is_closed()) return {};
    return {list->mapping, list->node.index()};
  }
  ListOrigin list = find_list(x);
  return {list.mapping, list.node};
}

std::string as_string(SEXP x) {
  if (TYPEOF(x) != STRSXP) return {};
  // A shared (ALTREP) string vector makes its element on demand, which may
  // raise: only then is the R error turned into an exception.
  const bool altrep = ALTREP(x);
  if ((altrep ? cpp11::safe[Rf_xlength](x) : XLENGTH(x)) != 1) return {};
  SEXP element = altrep ? cpp11::safe[STRING_ELT](x, 0) : STRING_ELT(x, 0);
  if (element == NA_STRING) return {};
  return CHAR(element);
}

int as_logical(SEXP x) { return cpp11::safe[Rf_asLogical](x); }

double as_real(SEXP x) { return cpp11::safe[Rf_asReal](x); }

// The option lists are built by the package's R code: ordinary lists with
// ordinary names.
SEXP list_field(SEXP list, const char* key) {
  if (TYPEOF(list) != VECSXP || ALTREP(list)) return R_NilValue;
  SEXP names = Rf_getAttrib(list, R_NamesSymbol);
  if (TYPEOF(names) != STRSXP || ALTREP(names)) return R_NilValue;
  for (R_xlen_t i = 0; i < XLENGTH(list); ++i)
    if (std::strcmp(CHAR(STRING_ELT(names, i)), key) == 0) return VECTOR_ELT(list, i);
  return R_NilValue;
}

int madvise_flag(const std::string& advice) {
  const int flag = advice == "normal"       ? MADV_NORMAL
                   : advice == "sequential" ? MADV_SEQUENTIAL
                   : advice == "random"     ? MADV_RANDOM
                   : advice == "willneed"   ? MADV_WILLNEED
                   : advice == "dontneed"   ? MADV_DONTNEED
                                            : -1;
  if (flag < 0) throw Error(ErrorKind::InvalidArgument, "unknown advice '" + advice + "'");
  return flag;
}

std::string region_name_for(const std::string& text) {
  const std::string prefix = names::kPrefix;
  return text.compare(0, prefix.size(), prefix) == 0 ? text : prefix + text;
}

CreateOptions create_options(SEXP options) {
  CreateOptions out;
  out.directory = shm_directory();
  std::string backing = as_string(list_field(options, "backing"));
  out.automatic = backing == "auto";
  out.backing = backing == "mmap" ? Backing::File : Backing::Shm;
  out.data_directory = as_string(list_field(options, "data_directory"));
  std::string name = as_string(list_field(options, "name"));
  if (!name.empty()) out.name = region_name_for(name);
  out.writable = !as_logical(list_field(options, "readonly"));
  out.persistent = as_logical(list_field(options, "persist")) == TRUE;
  out.shm_capacity = shm_capacity_from(list_field(options, "shm_capacity"));
  return out;
}

uint64_t shm_capacity_from(SEXP value) {
  // shm_capacity() (R/options.R) keeps it below 2^63, which converts.
  double capacity = as_real(value);
  return ISNAN(capacity) || capacity <= 0 ? 0 : static_cast<uint64_t>(capacity);
}

}  // namespace shmr::glue
