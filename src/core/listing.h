// Listing, pruning and removing this user's regions in a shm directory.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ownership.h"
#include "process.h"

namespace shmr {

struct RegionSummary {
  std::string name;
  Backing backing = Backing::Shm;
  std::string data_path;   // where the bytes are
  uint64_t size = 0;
  bool valid = false;      // header readable (of the locator, for the file backing)
  bool complete = false;   // the region's data file exists and has a valid header
  bool temporary = false;  // still being written (hidden temporary name)
  // Starts with the magic bytes of a region or of a locator, readable or
  // not: the file is shmr's, whatever its version or state.
  bool shmr_magic = false;
  process::Identity creator;
  process::Liveness creator_state = process::Liveness::Unknown;
  bool creator_alive = false;  // creator_state == Alive
  bool persistent = false;
  bool writable = false;
  int64_t created_unix_ms = 0;
  uint32_t format_version = 0;
  // A copy of a region on another host: `creator` is then its keeper, the
  // local process whose exit releases it.
  bool replica = false;
  std::string origin_host;
  std::string original_class;
  // The files listed (device and inode): the entry under the region's name
  // in the shm directory and, for the file backing, the data file (zero
  // when there was none). Removal goes only to these files: between the
  // listing and the removal, the name may have been removed and taken by a
  // new region of a live process.
  FileIdentity name_file;
  FileIdentity data_file;
};

// This user's regions (and temporary files) named in `directory`; file-backed
// regions are followed through their locators.
std::vector<RegionSummary> list_regions(const std::string& directory);
std::vector<RegionSummary> list_regions(const std::string& directory, process::Census& census);

// The region called `name` (a valid region name) in `directory`, without
// reading the rest of the directory; nullopt when there is none.
std::optional<RegionSummary> find_region(const std::string& directory, const std::string& name);

// Whether `directory` holds this user's file named `name` (a valid region
// name), told by the name alone: no descriptor is opened, so a region that
// cannot be opened now (no descriptor left) is still told apart from none.
bool region_file_present(const std::string& directory, const std::string& name);

// What prune_regions() looks at: every region, or only copies of other
// hosts' regions (replicas) and unfinished temporary files.
enum class PruneScope { AllRegions, CopiesAndUnfinished };

// Removes regions (and unfinished temporary files, and locators whose data
// file is gone) whose creator (a replica's keeper) is known to be gone
// (process::liveness()). Never touches persistent regions, nor those of live
// processes or of processes it cannot tell about. With `creator_pids`, only
// the regions of the gone processes that had one of those process IDs (one
// listing of the directory for all of them).
std::vector<std::string> prune_regions(const std::string& directory,
                                       PruneScope scope = PruneScope::AllRegions,
                                       const std::optional<std::set<int64_t>>& creator_pids = std::nullopt);
// prune_regions() on a listing made earlier (by list_regions()). A region
// whose name or data file is no longer the file listed is left alone: it
// was removed and its name taken by another region since.
std::vector<std::string> prune_listed_regions(const std::string& directory,
                                              const std::vector<RegionSummary>& listed,
                                              PruneScope scope = PruneScope::AllRegions,
                                              const std::optional<std::set<int64_t>>& creator_pids = std::nullopt);

// Removes the regions in `directory` whose header names `creator` as their
// creator, except persistent ones, replicas and segments (segment_close(
// unlink = FALSE) keeps one for other processes): at that process's exit, those
// it was handed but never took (a pool reply it did not read), which no
// mapping of its own removes. Returns their names.
std::vector<std::string> remove_regions_created_by(const std::string& directory,
                                                   const process::Identity& creator);

enum class RemovalByName { Removed, NoRegion, NotARegion };

// Removes the region called `name` whatever its creator or persistence
// (remove_shared()). A file under that name that is not shmr's (no magic
// bytes of a region or a locator: someone else's file in the same
// directory) is left alone: NotARegion.
RemovalByName remove_region(const std::string& directory, const std::string& name);

}  // namespace shmr
