// Region files and their mappings. Every descriptor and mapping is owned by
// an RAII object; a region that fails half-way is removed by its destructor,
// so nothing is left behind in the directory.
#pragma once

#include <cstdint>
#include <string>

#include "termination.h"

struct stat;

namespace shmr {

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();

  int get() const noexcept { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

class MemoryMap {
 public:
  MemoryMap() = default;
  MemoryMap(MemoryMap&& other) noexcept;
  MemoryMap& operator=(MemoryMap&& other) noexcept;
  MemoryMap(const MemoryMap&) = delete;
  MemoryMap& operator=(const MemoryMap&) = delete;
  ~MemoryMap();

  // Writes reach the file and every other process. With `populate`, the
  // page tables are filled up front: a region about to be written whole is
  // filled faster than by taking one fault per page.
  static MemoryMap shared_writable(int fd, uint64_t size, bool populate = false);
  // The file's pages, read-only: a write faults.
  static MemoryMap shared_read_only(int fd, uint64_t size);
  // Reads come from the shared pages; a write copies only the touched page
  // into this process (copy-on-write), never into the file. The mapping is
  // not charged to the commit limit (MAP_NORESERVE): only pages actually
  // written take memory of this process, so a region larger than RAM plus
  // swap maps, and a worker is not charged the whole object. (Under strict
  // overcommit, vm.overcommit_memory = 2, the kernel charges it all the same.)
  static MemoryMap private_copy_on_write(int fd, uint64_t size);

  // Swaps the pages for anonymous zero pages at the same address, so stale
  // pointers read zeros instead of faulting, and the file's pages are let go.
  void replace_with_zero_pages();

  // Makes the pages read-only for this process.
  void protect_read_only();

  void* data() const noexcept { return data_; }
  uint64_t size() const noexcept { return size_; }

 private:
  MemoryMap(void* data, uint64_t size) : data_(data), size_(size) {}
  void reset() noexcept;
  void* data_ = nullptr;
  uint64_t size_ = 0;
};

// A directory that holds regions: /dev/shm for the "shm" backing.
std::string default_shm_directory();

std::string region_path(const std::string& directory, const std::string& name);

// A region being written under a hidden temporary name. publish() makes it
// visible under its final name in one atomic step; if publish() is never
// reached the destructor unlinks the temporary file.
class PendingRegion {
 public:
  // How the file gets its bytes: through data(), a writable mapping of
  // space reserved up front (`populate`: the caller will write every byte,
  // see MemoryMap); or by write calls on descriptor() (nothing mapped),
  // with the space reserved up front or taken as it is written (a full
  // file system then fails the write, never a later access).
  enum class Writing { Mapped, ByDescriptor, ByDescriptorReserved };

  PendingRegion(const std::string& directory, const std::string& name, uint64_t size,
                bool populate = false);
  PendingRegion(const std::string& directory, const std::string& name, uint64_t size,
                Writing writing, bool populate = false);
  PendingRegion(const PendingRegion&) = delete;
  PendingRegion& operator=(const PendingRegion&) = delete;
  ~PendingRegion();

  void* data() const noexcept { return map_.data(); }
  uint64_t size() const noexcept { return size_; }
  int descriptor() const noexcept { return fd_.get(); }

  // Returns the open descriptor of the now-visible region. Throws
  // AlreadyExists when the final name was taken meanwhile.
  FileDescriptor publish();

 private:
  std::string directory_;
  std::string name_;
  std::string temp_path_;
  uint64_t size_ = 0;
  FileDescriptor fd_;
  MemoryMap map_;
  bool published_ = false;
  // Removes the temporary file if a termination signal ends the process
  // while the region is written (see termination.h).
  termination::Entry removal_at_termination_;

  void remove_at_termination() noexcept;
};

// Which file a descriptor has open, and which incarnation of it. Device and
// inode name the file itself, and its number cannot go to another file while
// any process has it open or mapped; the size and the time of the last
// status change (when the region was published under its name: Linux keeps
// no creation time for tmpfs) tell apart a later file that took a freed
// inode number.
struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t changed_sec = 0;
  int64_t changed_nsec = 0;

  static FileStamp of(const struct stat& st);
  bool same_file(const FileStamp& other) const noexcept {
    return device == other.device && inode == other.inode;
  }
  bool operator==(const FileStamp& other) const noexcept {
    return same_file(other) && size == other.size && changed_sec == other.changed_sec &&
           changed_nsec == other.changed_nsec;
  }
  bool operator!=(const FileStamp& other) const noexcept { return !(*this == other); }
};

struct OpenedRegion {
  FileDescriptor fd;
  uint64_t size = 0;
  FileStamp stamp;
  bool writable = false;  // the descriptor allows writing
};

enum class OpenMode {
  Read,
  Write,
  // Writing when the file allows it, else reading: one descriptor serves
  // whichever mapping the region's header asks for.
  ReadWriteIfAllowed,
};

// Opens an existing region file, read-only or for writing. Throws NotFound
// when there is no such file, Corrupt when it is not a regular file of this
// user.
OpenedRegion open_region(const std::string& directory, const std::string& name,
                         bool for_writing = false);
OpenedRegion open_region(const std::string& directory, const std::string& name, OpenMode mode);

// Removes the name; processes that mapped the region keep their pages.
// Returns false when the name did not exist.
bool unlink_region(const std::string& directory, const std::string& name);

// Prefix of the hidden names regions are written under before publish().
inline constexpr const char* kTemporaryPrefix = ".shmr_tmp_";

// The hidden name process `pid` writes the region `name` under:
// ".shmr_tmp_<pid>_<name>".
std::string temporary_name(int64_t pid, const std::string& name);

}  // namespace shmr
