#include "ownership.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <vector>

#include "creator.h"
#include "error.h"
#include "locator.h"
#include "termination.h"

namespace shmr {
namespace {

// Every region this process created and still owns, by the path of its
// name, so that any later mapping of it in this process shares the claim.
std::mutex owners_mutex;

std::unordered_map<std::string, std::weak_ptr<RegionOwner>>& owners_by_path() {
  static std::unordered_map<std::string, std::weak_ptr<RegionOwner>> owners;
  return owners;
}

}  // namespace

const char* backing_name(Backing backing) { return backing == Backing::Shm ? "shm" : "mmap"; }

bool remove_region_files(const RegionLocation& location) {
  bool removed = ::unlink(location.data_path().c_str()) == 0;
  if (location.backing == Backing::File)
    removed = (::unlink(location.name_path().c_str()) == 0) || removed;
  return removed;
}

FileIdentity FileIdentity::of(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return {};
  return of(st);
}

FileIdentity FileIdentity::of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

namespace {

// True when the file at `path` is the locator we published (same identity)
// and still leads to `data_path`. The identity alone does not tell: once the
// locator was removed, its inode number is free for whatever file takes the
// name next (ext4 reuses numbers at once).
bool is_our_locator(const std::string& path, const FileIdentity& expected, const std::string& name,
                    const std::string& data_path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  FileDescriptor guard(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !(FileIdentity::of(st) == expected)) return false;
  Locator locator;
  try {
    return read_locator(fd, name, locator) && locator.target_path == data_path;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

RegionOwner::RegionOwner(RegionLocation location, bool persistent)
    : RegionOwner(location, persistent, FileIdentity::of(location.data_path())) {}

RegionOwner::RegionOwner(RegionLocation location, bool persistent, FileIdentity data_file)
    : location_(std::move(location)),
      data_file_(data_file),
      // A shm region's name is its data file: no second lookup.
      name_file_(location_.name_path() == location_.data_path() ? data_file_
                                                                : FileIdentity::of(location_.name_path())),
      persistent_(persistent),
      creator_pid_(process::current().pid) {
  if (!persistent_) remove_at_termination();
}

void RegionOwner::remove_at_termination() noexcept {
  try {
    termination::FileToRemove data{location_.data_path(), data_file_.device, data_file_.inode};
    termination::FileToRemove name;
    if (location_.backing == Backing::File)
      name = {location_.name_path(), name_file_.device, name_file_.inode};
    removal_at_termination_ = termination::Entry(data, name);
  } catch (...) {
    // No memory for the paths: a prune_shared() removes the region if a
    // signal ends the process.
  }
}

RegionOwner::~RegionOwner() {
  {
    std::lock_guard<std::mutex> lock(owners_mutex);
    auto found = owners_by_path().find(location_.name_path());
    if (found != owners_by_path().end() && found->second.expired()) owners_by_path().erase(found);
  }
  release();
}

void RegionOwner::release() {
  std::call_once(released_, [this] {
    // A forked child shares the parent's objects but not its ownership.
    if (persistent_ || kept_ || creator_pid_ != process::current().pid) return;
    // Only the files this owner created: the name may have been removed and
    // taken by another region since.
    const std::string data_path = location_.data_path();
    const FileIdentity data_now = FileIdentity::of(data_path);
    // A data file that stays (its directory read-only, say) keeps its
    // locator: without it nothing could find the file again to remove it.
    bool data_stays = false;
    if (data_now == data_file_ && ::unlink(data_path.c_str()) != 0) {
      data_stays = errno != ENOENT;
      if (data_stays) note_file_left(data_path, errno);
    }
    // The locator too, unless a new data file took our data file's place
    // (then the locator there is the new region's).
    if (location_.backing == Backing::File && !data_stays &&
        (data_now == data_file_ || data_now == FileIdentity{}) &&
        is_our_locator(location_.name_path(), name_file_, location_.name, data_path) &&
        ::unlink(location_.name_path().c_str()) != 0 && errno != ENOENT)
      note_file_left(location_.name_path(), errno);
  });
  // After the removal: a signal before it still finds the entry.
  removal_at_termination_.reset();
}

// Called from release(), which destructors reach: never throws.
void RegionOwner::note_file_left(const std::string& path, int error) noexcept {
  try {
    files_left_ = path + " (" + std::strerror(error) + ")";
  } catch (...) {
    files_left_.clear();
  }
}

void RegionOwner::keep() {
  kept_ = true;
  removal_at_termination_.reset();
}

namespace {

std::mutex recipient_mutex;
process::Identity reply_recipient;

process::Identity receiver_of_sent_regions() {
  if (process::is_forked_child()) return process::fork_parent();
  std::lock_guard<std::mutex> lock(recipient_mutex);
  return reply_recipient;
}

}  // namespace

void set_reply_recipient(const process::Identity& recipient) noexcept {
  std::lock_guard<std::mutex> lock(recipient_mutex);
  reply_recipient = recipient;
}

void RegionOwner::hand_over_for_sending() noexcept {
  if (kept_ || persistent_ || creator_pid_ != process::current().pid) return;
  const process::Identity receiver = receiver_of_sent_regions();
  if (receiver.pid == 0 || receiver.pid == creator_pid_) return;
  // A signal waits until the region names its receiver or stays ours.
  termination::DeferredSignals defer;
  removal_at_termination_.reset();
  try {
    assign_creator(location_, receiver);
    kept_ = true;
    receiver_pid_ = receiver.pid;
  } catch (...) {
    remove_at_termination();  // the region stays this process's
  }
}

namespace {

// Reads the first `size` bytes of `path` into `bytes`, lets `change` edit
// them (it returns false when they are not what was expected), and writes
// them back.
void rewrite_file(const std::string& path, void* bytes, size_t size,
                  const std::function<bool(void*)>& change) {
  int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorKind::System, "cannot open " + path + " to record its new owner");
  FileDescriptor guard(fd);
  if (::pread(fd, bytes, size, 0) != static_cast<ssize_t>(size) || !change(bytes) ||
      ::pwrite(fd, bytes, size, 0) != static_cast<ssize_t>(size))
    throw Error(ErrorKind::System, "cannot record the new owner in " + path);
}

}  // namespace

void assign_creator(const RegionLocation& location, const process::Identity& creator) {
  format::RegionHeader header;
  rewrite_file(location.data_path(), &header, sizeof header, [&](void*) {
    if (std::memcmp(header.magic, format::kMagic, sizeof header.magic) != 0) return false;
    format::set_creator(header, creator);
    return true;
  });
  if (location.backing != Backing::File) return;
  LocatorHeader locator;
  rewrite_file(location.name_path(), &locator, sizeof locator, [&](void*) {
    if (std::memcmp(locator.magic, kLocatorMagic, sizeof locator.magic) != 0) return false;
    locator.creator_pid = creator.pid;
    locator.creator_start_ticks = creator.start_ticks;
    locator.creator_pid_namespace = creator.pid_namespace;
    return true;
  });
}

namespace {

std::shared_ptr<RegionOwner> record_claim(std::shared_ptr<RegionOwner> owner) {
  std::lock_guard<std::mutex> lock(owners_mutex);
  owners_by_path()[owner->location().name_path()] = owner;
  return owner;
}

}  // namespace

std::shared_ptr<RegionOwner> claim_region(const RegionLocation& location, bool persistent) {
  return record_claim(std::make_shared<RegionOwner>(location, persistent));
}

std::shared_ptr<RegionOwner> claim_region(const RegionLocation& location, bool persistent,
                                          FileIdentity data_file) {
  return record_claim(std::make_shared<RegionOwner>(location, persistent, data_file));
}

std::shared_ptr<RegionOwner> owner_of(const std::string& name_path) {
  std::lock_guard<std::mutex> lock(owners_mutex);
  auto found = owners_by_path().find(name_path);
  return found == owners_by_path().end() ? nullptr : found->second.lock();
}

std::shared_ptr<RegionOwner> owner_of(const std::string& name_path, const FileIdentity& data_file) {
  auto owner = owner_of(name_path);
  return owner && owner->data_file() == data_file ? owner : nullptr;
}

std::shared_ptr<RegionOwner> claim_for_mapping(const RegionLocation& location,
                                               const FileIdentity& data_file,
                                               const format::RegionHeader& header) {
  if (auto owner = owner_of(location.name_path(), data_file)) return owner;
  const process::Identity self = process::current();
  const process::Identity creator = format::creator_of(header);
  // A replica's header names its creator on another host, never this process.
  if ((header.flags & (format::kFlagPersistent | format::kFlagReplica)) != 0 ||
      !process::names_process(creator, self))
    return nullptr;
  return claim_region(location, false);
}

void release_all_owned_regions() {
  std::vector<std::shared_ptr<RegionOwner>> owners;
  {
    std::lock_guard<std::mutex> lock(owners_mutex);
    for (auto& entry : owners_by_path())
      if (auto owner = entry.second.lock()) owners.push_back(std::move(owner));
  }
  for (auto& owner : owners) owner->release();
}

}  // namespace shmr
