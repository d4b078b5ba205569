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

// An S4 object that is not a vector keeps its slots as attributes, and a
// pairlist its elements in cells: neither is a vector to fill, so each is
// copied cell by cell and its parts fetched one by one (fetch_parts()).
bool has_parts(SEXP value) { return TYPEOF(value) == S4SXP || TYPEOF(value) == LISTSXP; }

// What fetch_copy() copies: anything that may hold a view.
bool holds_views(SEXP value) { return needs_copy(value) || has_parts(value); }

// Lists are copied top-down: a list's copy is attached to its parent's copy
// (or is the result) before its elements are copied, so all that is
// allocated is reachable from the protected result. What is left to copy
// waits on this stack of (source, copy) pairs, an R list: a nested list
// costs heap, never C stack, and these frames hold plain data only (an R
// error here skips no destructor).
struct PendingCopies {
  SEXP items;
  PROTECT_INDEX index;
  R_xlen_t count;
};

void push(PendingCopies& pending, SEXP source, SEXP copy) {
  R_xlen_t capacity = XLENGTH(pending.items);
  if (2 * pending.count + 2 > capacity) {
    SEXP bigger = Rf_allocVector(VECSXP, 2 * capacity);
    for (R_xlen_t i = 0; i < 2 * pending.count; ++i) SET_VECTOR_ELT(bigger, i, VECTOR_ELT(pending.items, i));
    REPROTECT(pending.items = bigger, pending.index);
  }
  SET_VECTOR_ELT(pending.items, 2 * pending.count, source);
  SET_VECTOR_ELT(pending.items, 2 * pending.count + 1, copy);
  ++pending.count;
}

// Replaces attribute values that may hold views with their fetched copies.
// Attribute values are copied whole before they are set (R checks some,
// such as row.names, as they are set); an object nested through its
// attributes is the rare case that recurses, and R_CheckStack() in
// fetch_copy() turns its depth into an R error.
void fetch_attributes(SEXP copy) {
  R_xlen_t count = 0;
  for_each_attribute(copy, [&](SEXP, SEXP value) { count += holds_views(value) ? 1 : 0; });
  if (count == 0) return;
  SEXP pending = PROTECT(Rf_allocVector(VECSXP, 2 * count));
  R_xlen_t at = 0;
  for_each_attribute(copy, [&](SEXP tag, SEXP value) {
    if (!holds_views(value)) return;
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

// Fills `copy` (allocated with the type and length of `source`); list
// elements to copy are allocated, attached, and left on `pending`.
void fill(SEXP source, SEXP copy, PendingCopies& pending) {
  SEXPTYPE type = TYPEOF(source);
  R_xlen_t n = XLENGTH(source);
  if (type == STRSXP) {
    for (R_xlen_t i = 0; i < n; ++i) SET_STRING_ELT(copy, i, STRING_ELT(source, i));
  } else if (type == VECSXP) {
    for (R_xlen_t i = 0; i < n; ++i) {
      // An ALTREP list may make its element on demand: keep it protected.
      SEXP element = PROTECT(VECTOR_ELT(source, i));
      if (has_parts(element)) {
        SET_VECTOR_ELT(copy, i, fetch_copy(element));
      } else if (needs_copy(element)) {
        SEXP element_copy = Rf_allocVector(TYPEOF(element), XLENGTH(element));
        SET_VECTOR_ELT(copy, i, element_copy);
        push(pending, element, element_copy);
      } else {
        SET_VECTOR_ELT(copy, i, element);
      }
      UNPROTECT(1);
    }
  } else if (n > 0) {
    std::memcpy(writable_data(copy), DATAPTR_RO(source), static_cast<size_t>(n) * element_bytes(type));
  }
  SHALLOW_DUPLICATE_ATTRIB(copy, source);
  fetch_attributes(copy);
}

// The rare case that recurses (an S4 object in a slot, a pairlist in a
// pairlist): R_CheckStack() in fetch_copy() turns its depth into an R error.
SEXP fetch_parts(SEXP x) {
  SEXP copy = PROTECT(Rf_shallow_duplicate(x));
  if (TYPEOF(copy) == LISTSXP)
    for (SEXP cell = copy; cell != R_NilValue; cell = CDR(cell)) SETCAR(cell, fetch_copy(CAR(cell)));
  fetch_attributes(copy);
  UNPROTECT(1);
  return copy;
}

}  // namespace

SEXP fetch_copy(SEXP x) {
  if (!holds_views(x)) return x;
  R_CheckStack();
  if (has_parts(x)) return fetch_parts(x);
  SEXP result = PROTECT(Rf_allocVector(TYPEOF(x), XLENGTH(x)));
  PendingCopies pending;
  PROTECT_WITH_INDEX(pending.items = Rf_allocVector(VECSXP, 64), &pending.index);
  pending.count = 0;
  fill(x, result, pending);
  while (pending.count > 0) {
    --pending.count;
    SEXP source = PROTECT(VECTOR_ELT(pending.items, 2 * pending.count));
    SEXP copy = VECTOR_ELT(pending.items, 2 * pending.count + 1);  // reachable from result
    fill(source, copy, pending);
    UNPROTECT(1);
  }
  UNPROTECT(2);
  return result;
}

}  // namespace shmr::glue
