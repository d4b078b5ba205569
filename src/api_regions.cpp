// .Call entry points about regions as files: listing, pruning, removing,
// releasing at exit, and how much room the shm directory has.
#include <cpp11/doubles.hpp>
#include <cpp11/list.hpp>
#include <cpp11/logicals.hpp>
#include <cpp11/strings.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "api_support.h"
#include "core/listing.h"
#include "core/replica.h"
#include "core/ownership.h"
#include "core/store.h"
#include "r_api.h"

using namespace shmr;
using namespace shmr::glue;

namespace {

// The columns of shared_regions(), one row per region.
SEXP region_table(const std::vector<RegionSummary>& regions) {
  using namespace cpp11::literals;
  cpp11::writable::strings name, backing, path;
  cpp11::writable::doubles bytes, pid, created;
  cpp11::writable::logicals alive, persistent, complete, writable, replica;
  cpp11::writable::strings origin_host;
  for (const RegionSummary& r : regions) {
    bool known = r.valid || r.temporary;
    name.push_back(r.name);
    backing.push_back(backing_name(r.backing));
    path.push_back(r.data_path);
    bytes.push_back(static_cast<double>(r.size));
    pid.push_back(known ? static_cast<double>(r.creator.pid) : NA_REAL);
    // NA when nothing can be told (a creator in a PID namespace out of sight).
    alive.push_back(!known || r.creator_state == process::Liveness::Unknown
                        ? cpp11::r_bool(NA_LOGICAL)
                        : cpp11::r_bool(r.creator_state == process::Liveness::Alive));
    persistent.push_back(cpp11::r_bool(r.persistent));
    complete.push_back(cpp11::r_bool(r.complete && !r.temporary));
    writable.push_back(cpp11::r_bool(r.writable));
    replica.push_back(cpp11::r_bool(r.replica));
    origin_host.push_back(r.replica ? cpp11::r_string(r.origin_host) : cpp11::r_string(NA_STRING));
    created.push_back(r.valid && r.created_unix_ms != 0 ? static_cast<double>(r.created_unix_ms) / 1000.0
                                                        : NA_REAL);
  }
  return cpp11::writable::list({"name"_nm = name, "backing"_nm = backing, "path"_nm = path,
                                "bytes"_nm = bytes, "creator_pid"_nm = pid,
                                "creator_alive"_nm = alive, "persistent"_nm = persistent,
                                "writable"_nm = writable, "complete"_nm = complete,
                                "created"_nm = created, "replica"_nm = replica,
                                "origin_host"_nm = origin_host});
}

}  // namespace

extern "C" SEXP shmr_regions() {
  SHMR_BEGIN
  return region_table(list_regions(shm_directory()));
  SHMR_END
}

// The regions called `names` (as a user types them: "my_data" is the region
// "shmr_my_data"), looked up one by one without listing the directory;
// names with no region are left out.
extern "C" SEXP shmr_regions_named(SEXP names) {
  SHMR_BEGIN
  cpp11::strings wanted(names);
  std::vector<RegionSummary> found;
  const std::string directory = shm_directory();
  for (auto name : wanted) {
    if (name == NA_STRING) continue;
    if (auto summary = find_region(directory, region_name_for(std::string(name))))
      found.push_back(std::move(*summary));
  }
  return region_table(found);
  SHMR_END
}

// Whether a region file called `name` is in the shm directory, without
// opening it: share_open() tells a share it cannot open now from no share.
extern "C" SEXP shmr_region_file_present(SEXP name) {
  SHMR_BEGIN
  return Rf_ScalarLogical(region_file_present(shm_directory(), region_name_for(as_string(name))));
  SHMR_END
}

extern "C" SEXP shmr_prune() {
  SHMR_BEGIN
  auto removed = prune_regions(shm_directory());
  // Fetch locks whose holder died before removing them hold nothing.
  prune_fetch_locks(shm_directory());
  cpp11::writable::strings out;
  for (const std::string& name : removed) out.push_back(name);
  return out;
  SHMR_END
}

// The regions that workers of a pool left behind (killed, they could not
// remove them), once those processes `pids` are gone.
extern "C" SEXP shmr_prune_creator(SEXP pids) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    if (TYPEOF(pids) != REALSXP) throw Error(ErrorKind::InvalidArgument, "`pids` must be process ids");
    std::set<int64_t> creators;
    for (R_xlen_t i = 0; i < XLENGTH(pids); ++i) {
      const double value = REAL(pids)[i];
      if (ISNAN(value) || value < 1 || value > INT64_MAX / 2)
        throw Error(ErrorKind::InvalidArgument, "`pids` must be process ids");
      creators.insert(static_cast<int64_t>(value));
    }
    const auto removed = prune_regions(shm_directory(), PruneScope::AllRegions, creators);
    cpp11::writable::strings out;
    for (const std::string& name : removed) out.push_back(name);
    return out;
  });
  SHMR_END
}

// Before a fetch: the copies, unfinished files and fetch locks that
// processes of this host killed by a signal (daemons(0) ends busy daemons
// so) left behind, which would otherwise stay until prune_shared().
extern "C" SEXP shmr_prune_remote_copies() {
  SHMR_BEGIN
  const std::string directory = shm_directory();
  const auto removed = prune_regions(directory, PruneScope::CopiesAndUnfinished);
  prune_fetch_locks(directory);
  return Rf_ScalarInteger(static_cast<int>(removed.size()));
  SHMR_END
}

extern "C" SEXP shmr_remove(SEXP name) {
  SHMR_BEGIN
  std::string region = region_name_for(as_string(name));
  const std::string directory = shm_directory();
  const RemovalByName removal = remove_region(directory, region);
  if (removal == RemovalByName::NotARegion)
    throw Error(ErrorKind::InvalidArgument,
                region_path(directory, region) +
                    " is not a shmr region (it does not start with shmr's magic bytes); "
                    "it was not removed");
  // An idle mapping here would keep the removed region's memory.
  drop_idle_mappings(region);
  return cpp11::safe[Rf_ScalarLogical](removal == RemovalByName::Removed);
  SHMR_END
}

extern "C" SEXP shmr_release_all() {
  SHMR_BEGIN
  release_all_owned_regions();
  return R_NilValue;
  SHMR_END
}

// At exit, after shmr_release_all(): the regions handed to this process
// that it never took. Returns how many.
extern "C" SEXP shmr_remove_untaken() {
  SHMR_BEGIN
  const auto removed = remove_regions_created_by(shm_directory(), process::current());
  return Rf_ScalarInteger(static_cast<int>(removed.size()));
  SHMR_END
}

extern "C" SEXP shmr_shm_directory() {
  SHMR_BEGIN
  return cpp11::as_sexp(shm_directory());
  SHMR_END
}
