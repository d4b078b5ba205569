// Who removes a region: the process that created it, when its last mapping
// of the region goes (or at exit), unless the region is persistent.
#pragma once

#include <atomic>
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
  static FileIdentity of(const struct stat& st);
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
  const FileIdentity& data_file() const noexcept { return data_file_; }
  // Removes the region now (idempotent). Never in a forked child, never for
  // a persistent region.
  void release();
  // After release(): empty when the region's files went, else which file
  // stays and why (its directory read-only, say), for the caller to tell.
  const std::string& files_left() const noexcept { return files_left_; }
  // Gives up the claim: the region stays until someone removes it.
  void keep();
  // Before the region is sent by name to the process that will own it: in a
  // forked child, its parent (the child ends with _exit() and could never
  // release it); in a pool worker writing its reply, the caller named by
  // set_reply_recipient() (the worker may collect the object, or end, once
  // the reply is sent). Makes that process the creator and gives up this
  // process's claim; the receiver claims the region when it maps it
  // (claim_for_mapping()). Does nothing elsewhere, nor for a persistent
  // region or one another process created. Never throws.
  void hand_over_for_sending() noexcept;
  // The PID of the process the region was handed to, 0 while it was not:
  // the header this process read still names itself.
  int64_t receiver_pid() const noexcept { return receiver_pid_; }

 private:
  RegionLocation location_;
  FileIdentity data_file_;
  FileIdentity name_file_;
  bool persistent_;
  bool kept_ = false;
  int64_t creator_pid_;
  int64_t receiver_pid_ = 0;
  // Removes the region if a termination signal ends this process first.
  termination::Entry removal_at_termination_;
  std::string files_left_;

  void remove_at_termination() noexcept;
  void note_file_left(const std::string& path, int error) noexcept;
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
// The same, only when that claim's data file is `data_file`: a claim on an
// earlier region of the name, which another process removed and made again,
// is not a claim on the region there now.
std::shared_ptr<RegionOwner> owner_of(const std::string& name_path, const FileIdentity& data_file);

// The claim under which this process maps the region at `location`, whose
// (untrusted) header is `header`: its live claim; or a new one when the
// header names this process as creator and nobody here claims it (a region
// a forked child or a pool worker made for this process); else none.
std::shared_ptr<RegionOwner> claim_for_mapping(const RegionLocation& location,
                                               const FileIdentity& data_file,
                                               const format::RegionHeader& header);

// The process that receives the regions this process created when they are
// sent by name from now on (RegionOwner::hand_over_for_sending()); pid 0 for
// none. A pool worker names its caller while its reply is written.
void set_reply_recipient(const process::Identity& recipient) noexcept;

// Releases every region this process still owns (clean exit).
void release_all_owned_regions();

}  // namespace shmr
