// Who removes a region: the process that created it, when its last mapping
// of the region goes (or at exit), unless the region is persistent.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "format.h"
#include "process.h"
#include "region_file.h"

namespace shmr {

enum class Backing { Shm, File };

// "shm" or "mmap", the names users see.
const char* backing_name(Backing backing);

// Where a region is: its name lives in shm_directory (the region itself for
// the shm backing, a locator for the file backing); its bytes in
// data_directory.
struct RegionLocation {
  Backing backing = Backing::Shm;
  std::string shm_directory;
  std::string data_directory;
  std::string name;

  std::string data_path() const { return region_path(data_directory, name); }
  std::string name_path() const { return region_path(shm_directory, name); }
};

// Removes a region's data file and, for the file backing, its locator.
// Returns false when nothing was there.
bool remove_region_files(const RegionLocation& location);

// Which file a path named when it was recorded (device and inode), so that a
// later removal never hits a different file that took the same name.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  static FileIdentity of(const std::string& path);
  bool operator==(const FileIdentity& other) const {
    return device == other.device && inode == other.inode;
  }
};

class RegionOwner {
 public:
  RegionOwner(RegionLocation location, bool persistent);
  // The same, for a data file whose identity the caller has (from fstat()
  // of its descriptor).
  RegionOwner(RegionLocation location, bool persistent, FileIdentity data_file);
  RegionOwner(const RegionOwner&) = delete;
  RegionOwner& operator=(const RegionOwner&) = delete;
  ~RegionOwner();

  const RegionLocation& location() const noexcept { return location_; }
  // Removes the region now (idempotent). Never in a forked child, never for
  // a persistent region.
  void release();
  // Gives up the claim: the region stays until someone removes it.
  void keep();
  // In a forked child about to send the region to its parent: makes the
  // parent its creator (the child ends with _exit() and could never release
  // it) and gives up the child's claim. The parent claims it when it maps
  // it (claim_for_mapping()). Does nothing elsewhere. Never throws.
  void hand_to_fork_parent() noexcept;

 private:
  RegionLocation location_;
  FileIdentity data_file_;
  FileIdentity name_file_;
  bool persistent_;
  bool kept_ = false;
  int64_t creator_pid_;
  std::once_flag released_;
};

// Records `creator` as the creator of the region at `location`, in its
// header and, for the file backing, in its locator: a region written for
// another process (a pool worker's result, handed to the caller) is then
// judged by prune_regions() by that process's life. Throws when the files
// cannot be rewritten.
void assign_creator(const RegionLocation& location, const process::Identity& creator);

// Registers this process as the creator of the region at `location`.
std::shared_ptr<RegionOwner> claim_region(const RegionLocation& location, bool persistent);
// The same, for a region just created, whose data file is `data_file`.
std::shared_ptr<RegionOwner> claim_region(const RegionLocation& location, bool persistent,
                                          FileIdentity data_file);

// This process's live claim on the region whose name is at `name_path`, if any.
std::shared_ptr<RegionOwner> owner_of(const std::string& name_path);

// The claim under which this process maps the region at `location`, whose
// (untrusted) header is `header`: its live claim; or a new one when the
// header names this process as creator and nobody here claims it (a region
// a forked child or a pool worker made for this process); else none.
std::shared_ptr<RegionOwner> claim_for_mapping(const RegionLocation& location,
                                               const format::RegionHeader& header);

// Releases every region this process still owns (clean exit).
void release_all_owned_regions();

}  // namespace shmr
