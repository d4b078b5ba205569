#include "r_api.h"

#include "view.h"

extern "C" {
SEXP shmr_share(SEXP, SEXP);
SEXP shmr_map(SEXP);
SEXP shmr_is_shared(SEXP);
SEXP shmr_name(SEXP);
SEXP shmr_info(SEXP);
SEXP shmr_close(SEXP);
SEXP shmr_fetch(SEXP);
SEXP shmr_regions();
SEXP shmr_prune();
SEXP shmr_release_all();
SEXP shmr_contains_altrep(SEXP);

static const R_CallMethodDef call_methods[] = {
    {"shmr_share", (DL_FUNC)&shmr_share, 2},
    {"shmr_map", (DL_FUNC)&shmr_map, 1},
    {"shmr_is_shared", (DL_FUNC)&shmr_is_shared, 1},
    {"shmr_name", (DL_FUNC)&shmr_name, 1},
    {"shmr_info", (DL_FUNC)&shmr_info, 1},
    {"shmr_close", (DL_FUNC)&shmr_close, 1},
    {"shmr_fetch", (DL_FUNC)&shmr_fetch, 1},
    {"shmr_regions", (DL_FUNC)&shmr_regions, 0},
    {"shmr_prune", (DL_FUNC)&shmr_prune, 0},
    {"shmr_release_all", (DL_FUNC)&shmr_release_all, 0},
    {"shmr_contains_altrep", (DL_FUNC)&shmr_contains_altrep, 1},
    {NULL, NULL, 0}};

void R_init_shmr(DllInfo* dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  R_forceSymbols(dll, TRUE);
  shmr::glue::init_vector_view_classes(dll);
  shmr::glue::init_string_view_class(dll);
}
}
