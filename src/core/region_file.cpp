#include "region_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "error.h"
#include "names.h"
#include "process.h"
#include "termination.h"

namespace shmr {

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

MemoryMap::MemoryMap(MemoryMap&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MemoryMap& MemoryMap::operator=(MemoryMap&& other) noexcept {
  if (this != &other) {
    reset();
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }
  return *this;
}

MemoryMap::~MemoryMap() { reset(); }

void MemoryMap::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

namespace {

// Bytes of the field `key` ("VmSize:", "VmData:") of /proc/self/status, in
// kB there; nullopt when it cannot be read (no descriptor left, no /proc).
std::optional<uint64_t> own_status_bytes(const char* key) noexcept {
  std::FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return std::nullopt;
  char line[256];
  std::optional<uint64_t> found;
  const size_t key_length = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, key_length) != 0) continue;
    unsigned long long kb = 0;
    if (std::sscanf(line + key_length, " %llu", &kb) == 1) found = uint64_t{kb} * 1024;
    break;
  }
  std::fclose(f);
  return found;
}

// The soft limit `resource` when it is finite and `in_use` (unknown: taken
// as reached) plus `size` passes it.
std::optional<uint64_t> limit_passed(int resource, std::optional<uint64_t> in_use,
                                     uint64_t size) noexcept {
  struct rlimit limit {};
  if (::getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
  const uint64_t soft = static_cast<uint64_t>(limit.rlim_cur);
  if (in_use && *in_use <= soft && size <= soft - *in_use) return std::nullopt;
  return soft;
}

std::string limit_note(const char* what, const char* ulimit, uint64_t soft,
                       std::optional<uint64_t> in_use) {
  std::string note = " (this process's " + std::string(what) + " limit, `" + ulimit + "`, is " +
                     std::to_string(soft) + " bytes";
  if (in_use) note += ", of which " + std::to_string(*in_use) + " are in use";
  return note + ": raise it, or close() shared objects no longer needed)";
}

// Why mmap() of `size` bytes failed with ENOMEM, when the kernel's answer
// alone would mislead: the address-space limit (ulimit -v) counts every
// mapping, the data-size limit (ulimit -d) private writable ones, and for a
// small mapping with neither reached, the limit on the number of mappings.
std::string enomem_note(uint64_t size, int prot, int flags) {
  const std::optional<uint64_t> address_space = own_status_bytes("VmSize:");
  if (auto soft = limit_passed(RLIMIT_AS, address_space, size))
    return limit_note("address-space", "ulimit -v", *soft, address_space);
  if ((prot & PROT_WRITE) != 0 && (flags & MAP_PRIVATE) != 0) {
    const std::optional<uint64_t> data = own_status_bytes("VmData:");
    if (auto soft = limit_passed(RLIMIT_DATA, data, size))
      return limit_note("data-size", "ulimit -d", *soft, data);
  }
  if (size <= (uint64_t{1} << 20))
    return " (the process may have reached its limit on the number of mappings, "
           "vm.max_map_count: close() shared objects no longer needed, or share them "
           "together in one list)";
  return "";
}

}  // namespace

static void* map_or_throw(int fd, uint64_t size, int prot, int flags) {
  if (size == 0) throw Error(ErrorKind::InvalidArgument, "cannot map an empty region");
  void* p = ::mmap(nullptr, size, prot, flags, fd, 0);
  if (p == MAP_FAILED) {
    const int error = errno;
    // ENOMEM is rarely the machine's memory: a file mapping takes address
    // space, not memory. Name the limit that refused it.
    std::string what = "mmap of " + std::to_string(size) + " bytes";
    if (error == ENOMEM)
      throw AddressSpaceRefused(ErrorKind::System, what + enomem_note(size, prot, flags) + ": " +
                                                       std::strerror(error));
    throw_system_error(what, error);
  }
  return p;
}

MemoryMap MemoryMap::shared_writable(int fd, uint64_t size, bool populate) {
  return MemoryMap(
      map_or_throw(fd, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0)),
      size);
}

MemoryMap MemoryMap::shared_read_only(int fd, uint64_t size) {
  return MemoryMap(map_or_throw(fd, size, PROT_READ, MAP_SHARED), size);
}

MemoryMap MemoryMap::private_copy_on_write(int fd, uint64_t size) {
  return MemoryMap(map_or_throw(fd, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE),
                   size);
}

void MemoryMap::replace_with_zero_pages() {
  if (data_ == nullptr) return;
  void* p = ::mmap(data_, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                   -1, 0);
  if (p == MAP_FAILED) throw_system_error("mmap (release)", errno);
}

void MemoryMap::protect_read_only() {
  if (data_ != nullptr && ::mprotect(data_, size_, PROT_READ) != 0)
    throw_system_error("mprotect", errno);
}

std::string default_shm_directory() {
  const char* override_dir = std::getenv("SHMR_SHM_DIR");
  if (override_dir != nullptr && override_dir[0] != '\0') return override_dir;
  return "/dev/shm";
}

std::string region_path(const std::string& directory, const std::string& name) {
  return directory + "/" + name;
}

std::string temporary_name(int64_t pid, const std::string& name) {
  return std::string(kTemporaryPrefix) + std::to_string(pid) + "_" + name;
}

namespace {

// rename() that fails with EEXIST where the new name is taken; 0 or an
// errno, EINVAL (or ENOSYS) where the system or file system cannot.
int rename_without_replacing(const std::string& from, const std::string& to) noexcept {
#if defined(RENAME_NOREPLACE)
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0 ? 0 : errno;
#else
  (void)from;
  (void)to;
  return ENOSYS;
#endif
}

}  // namespace

PendingRegion::PendingRegion(const std::string& directory, const std::string& name,
                             uint64_t size, bool populate)
    : PendingRegion(directory, name, size, Writing::Mapped, populate) {}

PendingRegion::PendingRegion(const std::string& directory, const std::string& name,
                             uint64_t size, Writing writing, bool populate)
    : directory_(directory), name_(name), size_(size) {
  if (!names::is_valid_region_name(name))
    throw Error(ErrorKind::InvalidArgument, "invalid region name '" + name + "'");
  // The random part of a fresh name keeps temporary names unique too.
  temp_path_ = region_path(directory, temporary_name(process::current().pid, name));
  std::optional<termination::DeferredSignals> defer(std::in_place);
  int fd = ::open(temp_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    temp_path_.clear();
    if (err == ENOSPC || err == EDQUOT)  // no inode left, or over quota
      throw Error(ErrorKind::NoSpace, "not enough space in " + directory + " for a region");
    throw_system_error("cannot create a region in " + directory, err);
  }
  fd_ = FileDescriptor(fd);
  remove_at_termination();
  defer.reset();
  // The destructor does not run when the constructor throws: remove the
  // temporary file here.
  try {
    // Past the file-size limit (ulimit -f), sizing the file fails with
    // EFBIG only where SIGXFSZ is ignored: R keeps its default action,
    // which ends the process at once.
    if (auto soft = limit_passed(RLIMIT_FSIZE, uint64_t{0}, size))
      throw Error(ErrorKind::NoSpace,
                  "a region of " + std::to_string(size) + " bytes is larger than this process's " +
                      "file-size limit, `ulimit -f`, of " + std::to_string(*soft) +
                      " bytes: raise it");
    if (writing == Writing::ByDescriptor) {
      if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        int err = errno;
        if (err == EFBIG)
          throw Error(ErrorKind::NoSpace, "not enough space in " + directory + " for a region of " +
                                              std::to_string(size) + " bytes");
        throw_system_error("cannot size a region in " + directory, err);
      }
      return;
    }
    int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (rc != 0) {
      if (rc == ENOSPC || rc == EFBIG || rc == EDQUOT)
        throw Error(ErrorKind::NoSpace, "not enough space in " + directory + " for a region of " +
                                            std::to_string(size) + " bytes");
      throw_system_error("cannot reserve " + std::to_string(size) + " bytes in " + directory, rc);
    }
    if (writing == Writing::Mapped) map_ = MemoryMap::shared_writable(fd, size, populate);
  } catch (...) {
    // The entry goes with the members, after the file.
    ::unlink(temp_path_.c_str());
    throw;
  }
}

void PendingRegion::remove_at_termination() noexcept {
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return;
  try {
    removal_at_termination_ = termination::Entry(
        {temp_path_, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}, {});
  } catch (...) {
    // No memory for the path: a prune_shared() removes the file if a signal
    // ends the process.
  }
}

PendingRegion::~PendingRegion() {
  // The entry goes with the members, after the file. Only while the path
  // still names this file: a later copy of the same region by this process
  // (same PID, same name) may have removed it as stale and taken the path.
  if (published_ || temp_path_.empty()) return;
  struct stat held, named;
  if (::fstat(fd_.get(), &held) == 0 && ::lstat(temp_path_.c_str(), &named) == 0 &&
      held.st_dev == named.st_dev && held.st_ino == named.st_ino)
    ::unlink(temp_path_.c_str());
}

FileDescriptor PendingRegion::publish() {
  map_ = MemoryMap();
  std::string final_path = region_path(directory_, name_);
  // Neither call replaces an existing name, so a taken name fails cleanly.
  // The rename is one call where link() and unlink() are two; link() is for
  // file systems that cannot rename without replacing.
  int err = rename_without_replacing(temp_path_, final_path);
  const bool renamed = err == 0;
  if (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP)
    err = ::link(temp_path_.c_str(), final_path.c_str()) == 0 ? 0 : errno;
  if (err != 0) {
    if (err == EEXIST)
      throw Error(ErrorKind::AlreadyExists, "a shared region named '" + name_ + "' already exists");
    // tmpfs counts every name as an inode: a full one refuses a link.
    if (err == ENOSPC || err == EDQUOT)
      throw Error(ErrorKind::NoSpace, "not enough space in " + directory_ + " to publish region " + name_);
    throw_system_error("cannot publish region " + name_, err);
  }
  if (!renamed) ::unlink(temp_path_.c_str());
  published_ = true;
  // The temporary name is gone; the region's owner takes over from here.
  removal_at_termination_.reset();
  return std::move(fd_);
}

FileStamp FileStamp::of(const struct stat& st) {
  FileStamp stamp;
  stamp.device = static_cast<uint64_t>(st.st_dev);
  stamp.inode = static_cast<uint64_t>(st.st_ino);
  stamp.size = static_cast<uint64_t>(st.st_size);
  stamp.changed_sec = static_cast<int64_t>(st.st_ctim.tv_sec);
  stamp.changed_nsec = static_cast<int64_t>(st.st_ctim.tv_nsec);
  return stamp;
}

OpenedRegion open_region(const std::string& directory, const std::string& name,
                         bool for_writing) {
  return open_region(directory, name, for_writing ? OpenMode::Write : OpenMode::Read);
}

OpenedRegion open_region(const std::string& directory, const std::string& name, OpenMode mode) {
  std::string path = region_path(directory, name);
  // O_NONBLOCK: opening a FIFO planted under a region name must not hang.
  constexpr int kFlags = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  bool writable = mode != OpenMode::Read;
  int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | kFlags);
  if (fd < 0 && mode == OpenMode::ReadWriteIfAllowed &&
      (errno == EACCES || errno == EROFS || errno == EPERM || errno == EISDIR ||
       errno == ETXTBSY)) {
    // Not writable (or not a file at all: the checks below say so).
    writable = false;
    fd = ::open(path.c_str(), O_RDONLY | kFlags);
  }
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT)
      throw Error(ErrorKind::NotFound, "no shared region named '" + name + "' (it was released, "
                                       "or its creator exited)");
    if (err == ELOOP)
      throw Error(ErrorKind::Corrupt, "'" + name + "' is a symbolic link, not a shmr region");
    throw_system_error("cannot open region " + name, err);
  }
  OpenedRegion opened;
  opened.fd = FileDescriptor(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_system_error("fstat of region " + name, errno);
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorKind::Corrupt, "'" + name + "' is not a regular file");
  if (st.st_uid != ::geteuid())
    throw Error(ErrorKind::Corrupt, "region '" + name + "' belongs to another user");
  opened.size = static_cast<uint64_t>(st.st_size);
  opened.stamp = FileStamp::of(st);
  opened.writable = writable;
  return opened;
}

bool unlink_region(const std::string& directory, const std::string& name) {
  if (!names::is_valid_region_name(name)) return false;
  return ::unlink(region_path(directory, name).c_str()) == 0;
}

}  // namespace shmr
