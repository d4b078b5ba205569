// ALTREP view of a character vector stored in the packed layout. Elements
// become CHARSXPs only when read; the full vector is materialised (in data2)
// only when R asks for a data pointer or writes an element.
#include "r_api.h"

#include <climits>

#include "r_boundary.h"
#include "r_types.h"
#include "view.h"
#include "view_classes.h"

namespace shmr::glue {
namespace {

R_altrep_class_t string_cls;

SEXP element_from_region(SEXP x, R_xlen_t i) {
  ViewHandle& handle = open_view_handle(x);
  ErrorMessage message;
  StringRef s{nullptr, 0, format::StringEncoding::Missing};
  capture_exception(message, [&] { s = handle.node.string_at(static_cast<uint64_t>(i)); });
  if (message.set()) raise_r_error(message);
  if (s.encoding == format::StringEncoding::Missing) return NA_STRING;
  if (s.size > INT_MAX) Rf_error("shmr: string element is longer than R allows");
  return Rf_mkCharLenCE(s.data, static_cast<int>(s.size), r_encoding(s.encoding));
}

SEXP materialized(SEXP x) {
  SEXP cache = R_altrep_data2(x);
  if (cache != R_NilValue) return cache;
  R_xlen_t n = static_cast<R_xlen_t>(open_view_handle(x).node.length());
  cache = PROTECT(Rf_allocVector(STRSXP, n));
  for (R_xlen_t i = 0; i < n; ++i) SET_STRING_ELT(cache, i, element_from_region(x, i));
  R_set_altrep_data2(x, cache);
  UNPROTECT(1);
  return cache;
}

R_xlen_t string_length(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr && is_unavailable(x)) raise_unavailable(x);
  return handle == nullptr ? 0 : static_cast<R_xlen_t>(handle->node.length());
}

SEXP string_elt(SEXP x, R_xlen_t i) {
  SEXP cache = R_altrep_data2(x);
  if (cache != R_NilValue) return STRING_ELT(cache, i);
  return element_from_region(x, i);
}

void string_set_elt(SEXP x, R_xlen_t i, SEXP value) {
  if (view_writes_through(open_view_handle(x)))
    Rf_error("shmr: character vectors of a writable share cannot be changed in place; "
             "only logical, integer, double, complex and raw vectors can");
  SEXP cache = materialized(x);
  open_view_handle(x).cache_written = true;
  SET_STRING_ELT(cache, i, value);
}

void* string_dataptr(SEXP x, Rboolean writable) {
  SEXP cache = materialized(x);
  if (writable) open_view_handle(x).cache_written = true;
  return const_cast<SEXP*>(STRING_PTR_RO(cache));
}

const void* string_dataptr_or_null(SEXP x) {
  SEXP cache = R_altrep_data2(x);
  return cache == R_NilValue ? nullptr : STRING_PTR_RO(cache);
}

Rboolean string_inspect(SEXP x, int, int, int, void (*)(SEXP, int, int, int)) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) {
    Rprintf(" shmr string view (released)\n");
  } else {
    Rprintf(" shmr string view of %s node %llu%s%s\n", handle->mapping->region().name().c_str(),
            static_cast<unsigned long long>(handle->node.index()),
            R_altrep_data2(x) != R_NilValue ? " (materialised)" : "",
            handle->mapping->is_closed() ? " (closed)" : "");
  }
  return TRUE;
}

SEXP string_state(SEXP x) {
  if (is_unavailable(x)) return unavailable_state(x);
  ViewHandle& handle = open_view_handle(x);
  if (handle.cache_written || handle.mapping->is_detached()) return nullptr;
  return view_serialized_state(handle);
}

SEXP string_unserialize(SEXP cls, SEXP state) { return view_from_serialized_state(cls, state); }

SEXP string_duplicate(SEXP x, Rboolean) {
  ViewHandle& handle = open_view_handle(x);
  if (handle.cache_written) return nullptr;
  return fresh_view_of(handle);
}

}  // namespace

void init_string_view_class(DllInfo* dll) {
  string_cls = R_make_altstring_class("shmr_string", "shmr", dll);
  R_set_altrep_Length_method(string_cls, string_length);
  R_set_altrep_Inspect_method(string_cls, string_inspect);
  R_set_altrep_Serialized_state_method(string_cls, string_state);
  R_set_altrep_Unserialize_method(string_cls, string_unserialize);
  R_set_altrep_Duplicate_method(string_cls, string_duplicate);
  R_set_altvec_Dataptr_method(string_cls, string_dataptr);
  R_set_altvec_Dataptr_or_null_method(string_cls, string_dataptr_or_null);
  R_set_altstring_Elt_method(string_cls, string_elt);
  R_set_altstring_Set_elt_method(string_cls, string_set_elt);
  register_view_class(format::NodeKind::String, string_cls);
}

}  // namespace shmr::glue
