#include "fetch.h"

#include <cstring>

#include "attributes.h"
#include "r_types.h"

namespace shmr::glue {
namespace {

size_t element_bytes(SEXPTYPE type) {
  switch (type) {
    case LGLSXP:
    case INTSXP:
      return sizeof(int);
    case REALSXP:
      return sizeof(double);
    case CPLXSXP:
      return sizeof(Rcomplex);
    case RAWSXP:
      return 1;
    default:
      return 0;
  }
}

bool needs_copy(SEXP value) {
  switch (TYPEOF(value)) {
    case LGLSXP:
    case INTSXP:
    case REALSXP:
    case CPLXSXP:
    case RAWSXP:
    case STRSXP:
    case VECSXP:
      return true;
    default:
      return false;
  }
}

// Replaces attribute values that may hold views with their fetched copies.
void fetch_attributes(SEXP copy) {
  R_xlen_t count = 0;
  for_each_attribute(copy, [&](SEXP, SEXP value) { count += needs_copy(value) ? 1 : 0; });
  if (count == 0) return;
  SEXP pending = PROTECT(Rf_allocVector(VECSXP, 2 * count));
  R_xlen_t at = 0;
  for_each_attribute(copy, [&](SEXP tag, SEXP value) {
    if (!needs_copy(value)) return;
    SET_VECTOR_ELT(pending, at++, tag);
    SET_VECTOR_ELT(pending, at++, value);
  });
  for (R_xlen_t i = 0; i < count; ++i) {
    SEXP tag = VECTOR_ELT(pending, 2 * i);
    // dim is tiny and never a view; re-setting it would drop dimnames.
    if (tag == R_DimSymbol) continue;
    Rf_setAttrib(copy, tag, fetch_copy(VECTOR_ELT(pending, 2 * i + 1)));
  }
  UNPROTECT(1);
}

}  // namespace

SEXP fetch_copy(SEXP x) {
  SEXPTYPE type = TYPEOF(x);
  if (!needs_copy(x)) return x;
  R_xlen_t n = XLENGTH(x);
  SEXP copy = PROTECT(Rf_allocVector(type, n));
  if (type == STRSXP) {
    for (R_xlen_t i = 0; i < n; ++i) SET_STRING_ELT(copy, i, STRING_ELT(x, i));
  } else if (type == VECSXP) {
    for (R_xlen_t i = 0; i < n; ++i) SET_VECTOR_ELT(copy, i, fetch_copy(VECTOR_ELT(x, i)));
  } else if (n > 0) {
    std::memcpy(writable_data(copy), DATAPTR_RO(x), static_cast<size_t>(n) * element_bytes(type));
  }
  SHALLOW_DUPLICATE_ATTRIB(copy, x);
  fetch_attributes(copy);
  UNPROTECT(1);
  return copy;
}

}  // namespace shmr::glue
