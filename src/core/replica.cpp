#include "replica.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cctype>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>

#include "error.h"
#include "format.h"
#include "locator.h"
#include "names.h"
#include "ownership.h"
#include "reader.h"
#include "store.h"

namespace shmr {
namespace {

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool same_file(int fd, const std::string& path) {
  struct stat held, named;
  return ::fstat(fd, &held) == 0 && ::lstat(path.c_str(), &named) == 0 &&
         held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

std::string lock_path(const std::string& directory, const std::string& name) {
  return region_path(directory, std::string(kFetchLockPrefix) + name);
}

// A temporary file under this process's own PID can only be left over from a
// process that had this PID before (PIDs are reused, quickly so in a small
// PID namespace): the fetch lock is held, so it is no one's work in progress.
const std::string& without_own_stale_temporary(const std::string& directory, const std::string& name) {
  const std::string path = region_path(directory, temporary_name(::getpid(), name));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid())
    ::unlink(path.c_str());
  return directory;
}

std::mutex replicas_mutex;

std::map<std::string, std::shared_ptr<RegionOwner>>& kept_replicas() {
  static std::map<std::string, std::shared_ptr<RegionOwner>> kept;
  return kept;
}

}  // namespace

std::string host_identity(const std::string& shm_directory) {
  char name[HOST_NAME_MAX + 1] = "";
  if (::gethostname(name, sizeof name) != 0) std::strcpy(name, "unknown");
  name[HOST_NAME_MAX] = '\0';
  std::string host;
  for (const char* p = name; *p != '\0' && host.size() < 64; ++p)
    host.push_back(std::isalnum(static_cast<unsigned char>(*p)) || *p == '.' || *p == '-' ? *p : '_');
  if (host.empty()) host = "unknown";
  struct stat st;
  if (::stat(shm_directory.c_str(), &st) != 0)
    throw_system_error("cannot read the shm directory " + shm_directory, errno);
  return host + ":" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
}

std::optional<FetchLock> FetchLock::try_acquire(const std::string& directory, const std::string& name) {
  if (!names::is_valid_region_name(name))
    throw Error(ErrorKind::InvalidArgument, "invalid region name '" + name + "'");
  const std::string path = lock_path(directory, name);
  // The holder removes the file before letting go, so a file opened just
  // before that may be locked in vain: try again with the new file.
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0) throw_system_error("cannot open the fetch lock " + path, errno);
    FileDescriptor guard(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
      throw Error(ErrorKind::Corrupt, "the fetch lock " + path + " is not a regular file of this user");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK || errno == EINTR) return std::nullopt;
      throw_system_error("cannot lock " + path, errno);
    }
    if (same_file(fd, path)) return FetchLock(path, std::move(guard), st);
  }
  return std::nullopt;
}

FetchLock::FetchLock(std::string path, FileDescriptor fd, const struct stat& st)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      removal_at_termination_({path_, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}, {}) {}

FetchLock::~FetchLock() {
  if (fd_.get() >= 0 && same_file(fd_.get(), path_)) ::unlink(path_.c_str());
}

std::vector<std::string> prune_fetch_locks(const std::string& directory) {
  std::vector<std::string> removed;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return removed;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(dir, ::closedir);
  const size_t prefix = std::strlen(kFetchLockPrefix);
  while (struct dirent* entry = ::readdir(dir)) {
    std::string file = entry->d_name;
    if (file.compare(0, prefix, kFetchLockPrefix) != 0) continue;
    std::string name = file.substr(prefix);
    if (!names::is_valid_region_name(name)) continue;
    const std::string path = region_path(directory, file);
    int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    FileDescriptor held(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) continue;  // someone is fetching
    if (same_file(fd, path) && ::unlink(path.c_str()) == 0) removed.push_back(name);
  }
  return removed;
}

ReplicaBuilder::ReplicaBuilder(const std::string& shm_directory, const std::string& name,
                               const RegionIdentity& origin, const std::string& fallback_directory,
                               uint64_t shm_capacity)
    : name_(name), origin_(origin), shm_directory_(shm_directory), data_directory_(shm_directory) {
  const bool may_fall_back = !fallback_directory.empty();
  if (may_fall_back && (fallback_directory[0] != '/' || fallback_directory == shm_directory))
    throw Error(ErrorKind::InvalidArgument,
                "a copy's fallback directory must be an absolute path other than the shm directory");
  if (!reserved_in_shm(may_fall_back, shm_capacity)) {
    data_directory_ = fallback_directory;
    reserve_locator();
    pending_.emplace(without_own_stale_temporary(data_directory_, name), name, origin.size);
  }
  sink_.emplace(pending_->descriptor(), origin.size, data_directory_);
}

// Before any byte is copied: a shm directory too full even for the locator
// (or a data path too long for one) would otherwise fail the fetch only once
// the whole copy had come over the network, and name a 96-byte region.
void ReplicaBuilder::reserve_locator() {
  // Filled now (publish() sets the flags): if this process is killed before
  // it publishes, a prune finds its unfinished data file through it
  // (listing.cpp).
  const std::vector<char> bytes =
      encode_locator(Locator{region_path(data_directory_, name_), process::current(), 0});
  try {
    locator_.emplace(shm_directory_, name_, bytes.size());
    std::memcpy(locator_->data(), bytes.data(), bytes.size());
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::NoSpace) throw;
    throw Error(ErrorKind::NoSpace, "no room in " + shm_directory_ + " for a copy of " +
                                        std::to_string(origin_.size) +
                                        " bytes, nor for the locator of a copy kept as a file in " +
                                        data_directory_ + " (" + e.what() + ")");
  }
}

bool ReplicaBuilder::reserved_in_shm(bool may_fall_back, uint64_t shm_capacity) {
  const std::string& directory = without_own_stale_temporary(shm_directory_, name_);
  // Copies and regions of processes killed with SIGKILL may fill the host.
  bool reclaimed = false;
  const auto reclaim_once = [&] {
    if (reclaimed) return false;
    reclaimed = true;
    return reclaimed_space_of_dead_creators(directory);
  };
  if (may_fall_back && !has_room(directory, origin_.size, shm_capacity) &&
      !(reclaim_once() && has_room(directory, origin_.size, shm_capacity)))
    return false;
  for (;;) {
    try {
      pending_.emplace(directory, name_, origin_.size);
      return true;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::NoSpace) throw;
      if (reclaim_once()) continue;
      if (may_fall_back) return false;
      throw;
    }
  }
}

void ReplicaBuilder::write(uint64_t offset, const void* bytes, uint64_t size) {
  if (offset > origin_.size || size > origin_.size - offset)
    throw Error(ErrorKind::Corrupt, "the origin of region '" + name_ +
                                        "' sent bytes beyond the region's size");
  sink_->put(offset, bytes, size);
}

void ReplicaBuilder::publish() {
  sink_->finish();
  auto* base = static_cast<unsigned char*>(pending_->data());
  {
    RegionReader reader(base, origin_.size, name_);
    const format::RegionHeader& h = reader.header();
    if (h.format_version < 2)
      throw_corrupt(name_, "its origin wrote format version " + std::to_string(h.format_version) +
                               ", which has no room to record a copy");
    if (h.flags & format::kFlagReplica) throw_corrupt(name_, "the origin sent a copy, not a region");
    if ((h.flags & format::kFlagReadonly) == 0)
      throw_corrupt(name_, "the origin sent a writable region, which cannot be copied");
    if (h.total_size != origin_.size || h.creator_pid != origin_.creator_pid ||
        h.created_unix_ms != origin_.created_unix_ms)
      throw_corrupt(name_, "the bytes received are not those of the region on " + origin_.describe());
    // Every node, as mapping would check each one on first use.
    for (uint64_t i = 0; i < reader.node_count(); ++i) {
      NodeView node = reader.node(i);
      for (uint32_t a = 0; a < node.attribute_count(); ++a) {
        node.attribute_name(a);
        node.attribute_value(a);
      }
      if (node.kind() == format::NodeKind::List)
        for (uint64_t e = 0; e < node.length(); ++e) node.child(e);
    }
  }
  auto* header = reinterpret_cast<format::RegionHeader*>(base);
  header->flags = (header->flags | format::kFlagReplica) & ~format::kFlagPersistent;
  format::ReplicaRecord record{};
  process::Identity self = process::current();
  record.keeper_pid = self.pid;
  record.keeper_start_ticks = self.start_ticks;
  record.keeper_pid_namespace = self.pid_namespace;
  record.copied_unix_ms = now_unix_ms();
  std::strncpy(record.origin_host, origin_.host.c_str(), sizeof record.origin_host - 1);
  std::memcpy(base + sizeof(format::RegionHeader), &record, sizeof record);
  if (!file_backed()) {
    pending_->publish();
    return;
  }
  // The data file first: until the locator is there, the host's other
  // processes find no copy and wait for the fetch lock.
  const std::string data_path = region_path(data_directory_, name_);
  const std::vector<char> locator = encode_locator(Locator{data_path, self, header->flags});
  std::memcpy(locator_->data(), locator.data(), locator.size());
  FileDescriptor published = pending_->publish();
  try {
    locator_->publish();
  } catch (...) {
    if (same_file(published.get(), data_path)) ::unlink(data_path.c_str());
    throw;
  }
}

namespace {

// The region of that name here, opened; nullopt when there is none.
std::optional<OpenedRegion> open_local(const std::string& directory, const std::string& name,
                                       RegionLocation& location) {
  try {
    location = locate_region(directory, name);
    return open_region(location.data_directory, name, false);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::NotFound) return std::nullopt;
    throw;
  }
}

// The origin host holds one region per name: a copy of one it created
// before the wanted one is of a region gone there (a name shared again after
// close()). An older wanted one (a stale object) supersedes nothing.
bool is_superseded_copy(const RegionIdentity& copy, const RegionIdentity& wanted) {
  return copy.host == wanted.host && copy.created_unix_ms < wanted.created_unix_ms;
}

LocalCopy classify(int fd, const std::string& name, const RegionIdentity& origin,
                   const std::string& local_host) {
  format::RegionHeader header;
  if (!read_region_header(fd, header))
    throw Error(ErrorKind::Corrupt, "'" + name + "' on this host is not a readable shmr region");
  format::ReplicaRecord record;
  bool replica = read_replica_record(fd, header, record);
  RegionIdentity here{replica ? std::string(record.origin_host) : local_host, header.total_size,
                      header.creator_pid, header.created_unix_ms};
  if (is_wanted_region(here, replica, origin)) return replica ? LocalCopy::Replica : LocalCopy::Origin;
  if (replica && is_superseded_copy(here, origin)) return LocalCopy::Superseded;
  throw Error(ErrorKind::Corrupt,
              "a region named '" + name + "' exists on this host (" + local_host + ") but it is " +
                  (replica ? "a copy of the region on " : "the region on ") + here.describe() +
                  ", not the one the object refers to, on " + origin.describe());
}

}  // namespace

LocalCopy find_local_copy(const std::string& directory, const std::string& name,
                          const RegionIdentity& origin, const std::string& local_host) {
  RegionLocation location;
  std::optional<OpenedRegion> opened = open_local(directory, name, location);
  if (!opened) return LocalCopy::Absent;
  return classify(opened->fd.get(), name, origin, local_host);
}

bool remove_superseded_copy(const std::string& directory, const std::string& name,
                            const RegionIdentity& origin, const std::string& local_host) {
  RegionLocation location;
  std::optional<OpenedRegion> opened = open_local(directory, name, location);
  if (!opened) return false;
  if (classify(opened->fd.get(), name, origin, local_host) != LocalCopy::Superseded) return false;
  const std::string data_path = location.data_path();
  if (!same_file(opened->fd.get(), data_path) || ::unlink(data_path.c_str()) != 0) return false;
  // A file-backed copy's locator, which led to the data file just removed.
  if (location.backing == Backing::File && ::unlink(location.name_path().c_str()) != 0 && errno != ENOENT)
    return false;
  return true;
}

void keep_replica(const std::string& directory, const std::string& name) {
  RegionLocation location = locate_region(directory, name);
  auto owner = claim_region(location, false);
  std::lock_guard<std::mutex> lock(replicas_mutex);
  kept_replicas()[name] = std::move(owner);
}

std::vector<std::string> release_replicas(const std::vector<std::string>& names) {
  std::vector<std::shared_ptr<RegionOwner>> released;
  std::vector<std::string> out;
  {
    std::lock_guard<std::mutex> lock(replicas_mutex);
    auto& kept = kept_replicas();
    for (auto it = kept.begin(); it != kept.end();) {
      bool wanted = names.empty();
      for (const std::string& n : names) wanted = wanted || n == it->first;
      if (wanted) {
        out.push_back(it->first);
        released.push_back(std::move(it->second));
        it = kept.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& owner : released) owner->release();
  return out;
}

}  // namespace shmr
