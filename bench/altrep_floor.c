/* The least any ALTREP double vector can cost: a class whose Length and
 * Dataptr methods return values stored when the object was made, with no
 * lookup of any kind. Timed beside the shared vectors in
 * metrics/05-warm-side-by-side.R, it shows what R's own dispatch to ALTREP
 * methods costs in calls such as range(x), where R asks a vector for its
 * length and data pointer once per element (c() in range.default()).
 *
 * One object per process: the stored values are those of the last vector
 * wrapped, which the caller keeps referenced (it is the object's data1). */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Altrep.h>
#include <R_ext/Rdynload.h>

static R_altrep_class_t floor_class;
static R_xlen_t stored_length;
static void *stored_data;

static R_xlen_t floor_length(SEXP x) { return stored_length; }
static void *floor_dataptr(SEXP x, Rboolean writable) { return stored_data; }
static const void *floor_dataptr_or_null(SEXP x) { return stored_data; }

static SEXP floor_wrap(SEXP v) {
  if (TYPEOF(v) != REALSXP || ALTREP(v)) error("a plain double vector is needed");
  stored_length = XLENGTH(v);
  stored_data = REAL(v);
  return R_new_altrep(floor_class, v, R_NilValue);
}

static const R_CallMethodDef calls[] = {
  {"altrep_floor_wrap", (DL_FUNC) &floor_wrap, 1},
  {NULL, NULL, 0}
};

void R_init_altrep_floor(DllInfo *dll) {
  floor_class = R_make_altreal_class("altrep_floor", "altrep_floor", dll);
  R_set_altrep_Length_method(floor_class, floor_length);
  R_set_altvec_Dataptr_method(floor_class, floor_dataptr);
  R_set_altvec_Dataptr_or_null_method(floor_class, floor_dataptr_or_null);
  R_registerRoutines(dll, NULL, calls, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
}
