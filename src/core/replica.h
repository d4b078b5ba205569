// Copies of regions from other hosts (replicas): building one from bytes
// that arrive in chunks, the per-host lock that makes one process fetch while
// the others wait, and the local process that keeps each copy.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "origin.h"
#include "process.h"
#include "region_file.h"
#include "region_sink.h"
#include "termination.h"

namespace shmr {

// This host's identity: its host name and the device of the shm directory,
// "<host name>:<major>:<minor>". Two hosts that share a boot id (containers,
// simulated hosts) still differ in their shm directory's device.
std::string host_identity(const std::string& shm_directory);

// A lock on fetching region `name` into `directory`, held by one process of
// the host at a time: flock(2) on ".shmr_lock_<name>" in the directory, which
// the kernel releases when its holder dies. The holder removes the file when
// it lets go, or when a termination signal ends it.
class FetchLock {
 public:
  // The lock, or nullopt when another process holds it.
  static std::optional<FetchLock> try_acquire(const std::string& directory, const std::string& name);
  FetchLock(FetchLock&& other) noexcept
      : path_(std::move(other.path_)),
        fd_(std::move(other.fd_)),
        removal_at_termination_(std::move(other.removal_at_termination_)) {}
  FetchLock(const FetchLock&) = delete;
  FetchLock& operator=(const FetchLock&) = delete;
  ~FetchLock();

 private:
  FetchLock(std::string path, FileDescriptor fd, const struct stat& st);
  std::string path_;
  FileDescriptor fd_;
  // daemons(0) ends a busy daemon with SIGTERM: its lock file goes too.
  termination::Entry removal_at_termination_;
};

// Prefix of the lock files in the shm directory.
inline constexpr const char* kFetchLockPrefix = ".shmr_lock_";

// Removes lock files no process holds (their holder died before removing
// them). Returns their region names.
std::vector<std::string> prune_fetch_locks(const std::string& directory);

// A replica being built under the hidden temporary name, its full size
// reserved up front. If publish() is never reached, nothing is left behind.
//
// It goes in the shm directory. When that has no room for it (`shm_capacity`
// counts as its size when smaller, as for share()), and `fallback_directory`
// is given, it goes there as a data file with a locator in the shm directory,
// as share(backing = "auto") does: a container's shm directory is often
// 64 MB, and one file-backed copy per host still beats an error per worker.
class ReplicaBuilder {
 public:
  ReplicaBuilder(const std::string& shm_directory, const std::string& name, const RegionIdentity& origin,
                 const std::string& fallback_directory = "", uint64_t shm_capacity = 0);

  uint64_t size() const noexcept { return origin_.size; }
  // Copies `size` bytes to `offset` (bounds checked).
  void write(uint64_t offset, const void* bytes, uint64_t size);
  // Validates the bytes as a region (header, every node) that is the
  // origin's (size, creator, creation time), records this process as its
  // keeper, and publishes it under its name (a file-backed copy: its data
  // file, then its locator). Throws Corrupt (nothing is left), or
  // AlreadyExists when the name was taken meanwhile.
  void publish();
  // Whether the copy is a data file outside the shm directory.
  bool file_backed() const noexcept { return data_directory_ != shm_directory_; }

 private:
  std::string name_;
  RegionIdentity origin_;
  std::string shm_directory_;
  std::string data_directory_;
  std::optional<PendingRegion> pending_;  // always set once constructed
  // A file-backed copy's locator, its space in the shm directory reserved
  // with the copy's.
  std::optional<PendingRegion> locator_;
  // Chunks go into the file by the kernel's copy, as share() writes: a
  // copy through the mapping would fault in each fresh page (about twice
  // the time for a 200 MB copy). The mapping reads and stamps the header.
  std::optional<FileSink> sink_;

  // Reserves the copy's space in the shm directory; false when it has no
  // room and the copy may go to the fallback directory instead.
  bool reserved_in_shm(bool may_fall_back, uint64_t shm_capacity);
  void reserve_locator();
};

enum class LocalCopy {
  Absent,      // no region of that name here
  Origin,      // the region itself (this host is its origin host)
  Replica,     // a complete copy of it
  Superseded,  // a copy of an earlier region of that name on the same origin host
};

// What a region named `name` in `directory` is to the region `origin`.
// Throws Mismatch-like Corrupt errors naming both when it is another region
// of the same name (user-chosen names can collide across hosts).
LocalCopy find_local_copy(const std::string& directory, const std::string& name,
                          const RegionIdentity& origin, const std::string& local_host);

// Removes the copy named `name` if it is still Superseded by `origin`; call
// it under the fetch lock. Its processes keep their mappings; its keeper
// later finds the name taken by another file and leaves that alone.
// Returns whether it removed one; throws as find_local_copy() does.
bool remove_superseded_copy(const std::string& directory, const std::string& name,
                            const RegionIdentity& origin, const std::string& local_host);

// The replica `name` is kept by this process until release_replica() or the
// process's exit (then it is removed, unless another process removed it).
void keep_replica(const std::string& directory, const std::string& name);

// Removes the replicas this process keeps among `names` (all when empty);
// returns the names removed.
std::vector<std::string> release_replicas(const std::vector<std::string>& names);

}  // namespace shmr
