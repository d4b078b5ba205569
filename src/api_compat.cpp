// .Call entry points behind R/mappings.R (what close() does not cover):
// letting go of one mapping without touching the region (memshare's
// releaseViews(), even in the process that created the region), and marking
// a mapping whose region name is gone (bettermc's allocate_from_shm()).
#include "api_support.h"
#include "list_registry.h"
#include "r_api.h"

using namespace shmr;
using namespace shmr::glue;

// Unmaps the region `x` reads in this process. Unlike close(), the region
// itself is left alone, whoever created it. FALSE when `x` is not shared.
extern "C" SEXP shmr_unmap(SEXP x) {
  BEGIN_CPP11
  Origin origin = origin_of(x);
  if (!origin.mapping) return Rf_ScalarLogical(FALSE);
  origin.mapping->region().close(Removal::Leave);
  forget_lists_of(origin.mapping.get());
  return Rf_ScalarLogical(TRUE);
  END_CPP11
}

// Marks the mapping `x` reads as detached: its views serialize by value.
extern "C" SEXP shmr_detach(SEXP x) {
  BEGIN_CPP11
  Origin origin = origin_of(x);
  if (!origin.mapping) return Rf_ScalarLogical(FALSE);
  origin.mapping->detach();
  return Rf_ScalarLogical(TRUE);
  END_CPP11
}
