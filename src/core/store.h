// The object store: creating, opening, owning and listing regions. This is
// the engine's public face towards the R glue.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "process.h"
#include "reader.h"
#include "region_file.h"
#include "writer.h"

namespace shmr {

// The creator's claim on a region: when the last reference goes, the region's
// name is removed, unless it is persistent or this is a forked child.
class RegionOwner {
 public:
  RegionOwner(std::string directory, std::string name, bool persistent);
  RegionOwner(const RegionOwner&) = delete;
  RegionOwner& operator=(const RegionOwner&) = delete;
  ~RegionOwner();

  const std::string& name() const noexcept { return name_; }
  // Unlinks now (idempotent).
  void release();

 private:
  std::string directory_;
  std::string name_;
  bool persistent_;
  int64_t creator_pid_;
  std::once_flag released_;
};

// Removes the names of every region this process still owns (clean exit).
void release_all_owned_regions();

// A validated, privately mapped (copy-on-write) region.
class MappedRegion {
 public:
  MappedRegion(std::string directory, std::string name, MemoryMap map,
               std::shared_ptr<RegionOwner> owner);

  const std::string& name() const noexcept { return name_; }
  const std::string& directory() const noexcept { return directory_; }
  const RegionReader& reader() const noexcept { return reader_; }
  const MemoryMap& map() const noexcept { return map_; }
  bool is_owner() const noexcept { return owner_ != nullptr; }
  bool is_closed() const noexcept { return closed_; }

  // Lets go of the pages (stale pointers then read zeros) and, for the
  // creator, removes the region's name.
  void close();

 private:
  std::string directory_;
  std::string name_;
  MemoryMap map_;
  RegionReader reader_;
  std::shared_ptr<RegionOwner> owner_;
  bool closed_ = false;
};

struct CreateOptions {
  std::string directory;
  std::string name;  // empty: generate one
  bool persistent = false;
};

// Writes `description` into a new region, publishes it, and returns the
// creator's own mapping of it (which owns the region).
std::shared_ptr<MappedRegion> create_region(const RegionDescription& description,
                                            const CreateOptions& options);

// Maps an existing region. In the process that created it, the new mapping
// shares the ownership. Throws NotFound or Corrupt.
std::shared_ptr<MappedRegion> open_mapped_region(const std::string& directory,
                                                 const std::string& name);

struct RegionSummary {
  std::string name;
  uint64_t size = 0;
  bool valid = false;      // header readable
  bool temporary = false;  // still being written (hidden temporary name)
  process::Identity creator;
  bool creator_alive = false;
  bool persistent = false;
  int64_t created_unix_ms = 0;
  uint32_t format_version = 0;
  std::string original_class;
};

// This user's regions (and temporary files) in `directory`.
std::vector<RegionSummary> list_regions(const std::string& directory);

// Removes regions (and unfinished temporary files) whose creator is gone.
// Never touches persistent regions or those of live processes.
std::vector<std::string> prune_regions(const std::string& directory);

}  // namespace shmr
