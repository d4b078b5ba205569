// .Call entry points behind R/mappings.R (what close() does not cover):
// advising the kernel about one mapping (shared_advise()),
// letting go of one mapping without touching the region (memshare's
// releaseViews(), even in the process that created the region), and marking
// a mapping whose region name is gone (bettermc's allocate_from_shm()).
#include <sys/mman.h>

#include <string>

#include "api_support.h"
#include "list_registry.h"
#include "r_api.h"

using namespace shmr;
using namespace shmr::glue;

// Unmaps the region `x` reads in this process. Unlike close(), the region
// itself is left alone, whoever created it. FALSE when `x` is not shared.
extern "C" SEXP shmr_unmap(SEXP x) {
  SHMR_BEGIN
  Origin origin = origin_of(x);
  if (!origin.mapping) return Rf_ScalarLogical(FALSE);
  origin.mapping->region().close(Removal::Leave);
  forget_lists_of(origin.mapping.get());
  return Rf_ScalarLogical(TRUE);
  SHMR_END
}

// Marks the mapping `x` reads as detached: its views serialize by value.
extern "C" SEXP shmr_detach(SEXP x) {
  SHMR_BEGIN
  Origin origin = origin_of(x);
  if (!origin.mapping) return Rf_ScalarLogical(FALSE);
  origin.mapping->detach();
  return Rf_ScalarLogical(TRUE);
  SHMR_END
}

// madvise() over the whole mapping of the region `x` reads (shard's
// shared_advise()); TRUE when the kernel took the advice. "dontneed" is not
// given to a copy-on-write mapping: it would throw away pages this process
// wrote, so FALSE.
extern "C" SEXP shmr_advise(SEXP x, SEXP advice) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    Origin origin = origin_of(x);
    if (!origin.mapping) throw Error(ErrorKind::InvalidArgument, "not a shared object");
    const int flag = madvise_flag(as_string(advice));
    const MappedRegion& region = origin.mapping->region();
    if (flag == MADV_DONTNEED && region.access() == Access::CopyOnWrite)
      return cpp11::safe[Rf_ScalarLogical](FALSE);
    const MemoryMap& map = region.map();
    const bool taken = ::madvise(map.data(), map.size(), flag) == 0;
    return cpp11::safe[Rf_ScalarLogical](taken);
  });
  SHMR_END
}
