#include "api_support.h"

#include "core/names.h"
#include "core/store.h"
#include "list_registry.h"
#include "list_view.h"
#include "view.h"

namespace shmr::glue {

Origin origin_of(SEXP x) {
  if (ViewHandle* view = view_handle(x)) {
    // A slice is part of a node, not an object of the region.
    if (view->mapping->is_closed() || view->is_slice()) return {};
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
  if (TYPEOF(x) != STRSXP || XLENGTH(x) != 1 || STRING_ELT(x, 0) == NA_STRING) return {};
  return CHAR(STRING_ELT(x, 0));
}

SEXP list_field(SEXP list, const char* key) {
  SEXP names = Rf_getAttrib(list, R_NamesSymbol);
  if (TYPEOF(list) != VECSXP || TYPEOF(names) != STRSXP) return R_NilValue;
  for (R_xlen_t i = 0; i < XLENGTH(list); ++i)
    if (std::string(CHAR(STRING_ELT(names, i))) == key) return VECTOR_ELT(list, i);
  return R_NilValue;
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
  out.writable = !Rf_asLogical(list_field(options, "readonly"));
  out.persistent = Rf_asLogical(list_field(options, "persist")) == TRUE;
  double capacity = Rf_asReal(list_field(options, "shm_capacity"));
  out.shm_capacity = ISNAN(capacity) || capacity <= 0 ? 0 : static_cast<uint64_t>(capacity);
  return out;
}

}  // namespace shmr::glue
