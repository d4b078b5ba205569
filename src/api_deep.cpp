// .Call entry points that let the deep-sharing traversal (R/deep.R) see and
// rebuild an object graph without touching its data: object identity,
// stored attribute values, bindings without forcing promises or calling
// active bindings, and shallow rebuilds with some parts replaced.
#include <cpp11/protect.hpp>

#include <cstdio>
#include <cstring>

#include "attributes.h"
#include "r_api.h"
#include "r_boundary.h"
#include "view.h"

using namespace shmr::glue;

namespace {

SEXP address_string(SEXP x) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", static_cast<void*>(x));
  return Rf_mkString(text);
}

double element_bytes(SEXPTYPE type) {
  switch (type) {
    case LGLSXP:
    case INTSXP:
      return 4;
    case REALSXP:
      return 8;
    case CPLXSXP:
      return 16;
    case RAWSXP:
      return 1;
    case STRSXP:
      return sizeof(SEXP);
    default:
      return 0;
  }
}

}  // namespace

// The address of `x`: two places hold the same object when these agree.
extern "C" SEXP shmr_address(SEXP x) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] { return address_string(x); });
  SHMR_END
}

// Bytes of data of an atomic or character vector: the elements, and for a
// character vector also the bytes of its strings (NA counts as none).
// -1 for anything else.
extern "C" SEXP shmr_data_bytes(SEXP x) {
  SHMR_BEGIN
  double width = element_bytes(TYPEOF(x));
  double bytes = -1;
  if (width > 0) {
    R_xlen_t n = XLENGTH(x);
    bytes = width * static_cast<double>(n);
    if (TYPEOF(x) == STRSXP)
      for (R_xlen_t i = 0; i < n; ++i) {
        SEXP s = STRING_ELT(x, i);
        if (s != NA_STRING) bytes += static_cast<double>(LENGTH(s));
      }
  }
  return cpp11::unwind_protect([&] { return Rf_ScalarReal(bytes); });
  SHMR_END
}

// The attributes of `x` as a named list of the stored values: unlike
// attributes(), compact row names stay compact.
extern "C" SEXP shmr_stored_attributes(SEXP x) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] {
    R_xlen_t n = 0;
    for_each_attribute(x, [&](SEXP, SEXP) { ++n; });
    SEXP values = PROTECT(Rf_allocVector(VECSXP, n));
    SEXP names = PROTECT(Rf_allocVector(STRSXP, n));
    R_xlen_t i = 0;
    for_each_attribute(x, [&](SEXP tag, SEXP value) {
      SET_VECTOR_ELT(values, i, value);
      SET_STRING_ELT(names, i, PRINTNAME(tag));
      ++i;
    });
    Rf_setAttrib(values, R_NamesSymbol, names);
    UNPROTECT(2);
    return values;
  });
  SHMR_END
}

// A shallow copy of the list (or other object) `x` with elements
// `element_at` (1-based) set to `element_values` and attributes
// `attribute_names` set to `attribute_values`. Data is not copied.
extern "C" SEXP shmr_rebuild(SEXP x, SEXP element_at, SEXP element_values,
                             SEXP attribute_names, SEXP attribute_values) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] {
    SEXP copy = PROTECT(Rf_shallow_duplicate(x));
    for (R_xlen_t k = 0; k < XLENGTH(element_at); ++k) {
      R_xlen_t at = static_cast<R_xlen_t>(REAL(element_at)[k]) - 1;
      if (TYPEOF(copy) != VECSXP || at < 0 || at >= XLENGTH(copy))
        Rf_error("shmr: internal error: element %g out of range", REAL(element_at)[k]);
      SET_VECTOR_ELT(copy, at, VECTOR_ELT(element_values, k));
    }
    for (R_xlen_t k = 0; k < XLENGTH(attribute_names); ++k)
      Rf_setAttrib(copy, Rf_install(Rf_translateCharUTF8(STRING_ELT(attribute_names, k))),
                   VECTOR_ELT(attribute_values, k));
    UNPROTECT(1);
    return copy;
  });
  SHMR_END
}

// How each binding `names` of `env` is held: "value"; "active" (a function
// is called on every read); "promise" (reading it may evaluate code); or
// "unevaluated": a missing argument or `...`, which cannot be read.
extern "C" SEXP shmr_binding_kinds(SEXP env, SEXP names) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] {
    if (TYPEOF(env) != ENVSXP) Rf_error("shmr: internal error: not an environment");
    R_xlen_t n = XLENGTH(names);
    SEXP kinds = PROTECT(Rf_allocVector(STRSXP, n));
    for (R_xlen_t i = 0; i < n; ++i) {
      SEXP symbol = Rf_installChar(STRING_ELT(names, i));
      const char* kind = "value";
      if (R_BindingIsActive(symbol, env))
        kind = "active";
      else {
        SEXP value = Rf_findVarInFrame(env, symbol);
        if (TYPEOF(value) == PROMSXP)
          kind = "promise";
        else if (TYPEOF(value) == DOTSXP || value == R_MissingArg)
          kind = "unevaluated";
      }
      SET_STRING_ELT(kinds, i, Rf_mkChar(kind));
    }
    UNPROTECT(1);
    return kinds;
  });
  SHMR_END
}

// Binds `name` in `to` to exactly what it is bound to in `from`, so an
// unevaluated binding stays unevaluated.
extern "C" SEXP shmr_copy_binding(SEXP from, SEXP to, SEXP name) {
  SHMR_BEGIN
  cpp11::unwind_protect([&] {
    SEXP symbol = Rf_installChar(STRING_ELT(name, 0));
    Rf_defineVar(symbol, Rf_findVarInFrame(from, symbol), to);
  });
  return R_NilValue;
  SHMR_END
}

// Whether `x` is a view whose region was closed: its data can no longer be
// read, so it can be neither shared again nor copied.
extern "C" SEXP shmr_is_closed_view(SEXP x) {
  SHMR_BEGIN
  ViewHandle* view = view_handle(x);
  return Rf_ScalarLogical(view != nullptr && view->mapping->is_closed());
  SHMR_END
}
