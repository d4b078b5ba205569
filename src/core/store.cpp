#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "error.h"
#include "names.h"

namespace shmr {

namespace {

// Every region this process created and still owns, by path, so that any
// later mapping of it in this process shares the ownership.
std::mutex owners_mutex;

std::unordered_map<std::string, std::weak_ptr<RegionOwner>>& owners_by_path() {
  static std::unordered_map<std::string, std::weak_ptr<RegionOwner>> owners;
  return owners;
}

std::shared_ptr<RegionOwner> live_owner(const std::string& path) {
  std::lock_guard<std::mutex> lock(owners_mutex);
  auto found = owners_by_path().find(path);
  return found == owners_by_path().end() ? nullptr : found->second.lock();
}

std::shared_ptr<RegionOwner> new_owner(const std::string& directory, const std::string& name,
                                       bool persistent) {
  auto owner = std::make_shared<RegionOwner>(directory, name, persistent);
  std::lock_guard<std::mutex> lock(owners_mutex);
  owners_by_path()[region_path(directory, name)] = owner;
  return owner;
}

}  // namespace

RegionOwner::RegionOwner(std::string directory, std::string name, bool persistent)
    : directory_(std::move(directory)),
      name_(std::move(name)),
      persistent_(persistent),
      creator_pid_(static_cast<int64_t>(::getpid())) {}

RegionOwner::~RegionOwner() {
  {
    std::lock_guard<std::mutex> lock(owners_mutex);
    auto found = owners_by_path().find(region_path(directory_, name_));
    if (found != owners_by_path().end() && found->second.expired()) owners_by_path().erase(found);
  }
  release();
}

void RegionOwner::release() {
  std::call_once(released_, [this] {
    // A forked child shares the parent's objects but not its ownership.
    if (!persistent_ && creator_pid_ == static_cast<int64_t>(::getpid()))
      unlink_region(directory_, name_);
  });
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

MappedRegion::MappedRegion(std::string directory, std::string name, MemoryMap map,
                           std::shared_ptr<RegionOwner> owner)
    : directory_(std::move(directory)),
      name_(std::move(name)),
      map_(std::move(map)),
      reader_(map_.data(), map_.size(), name_),
      owner_(std::move(owner)) {}

void MappedRegion::close() {
  if (closed_) return;
  closed_ = true;
  map_.replace_with_zero_pages();
  if (owner_) owner_->release();
}

static int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::shared_ptr<MappedRegion> create_region(const RegionDescription& description,
                                            const CreateOptions& options) {
  RegionWriter writer(description);
  std::string name = options.name.empty() ? names::generate() : options.name;
  PendingRegion pending(options.directory, name, writer.total_size());
  process::Identity self = process::current();
  writer.write(pending.data(), pending.size(), self.pid, self.start_ticks, now_unix_ms());
  // The header flag is what tells prune_regions() to keep the region.
  if (options.persistent)
    static_cast<format::RegionHeader*>(pending.data())->flags |= format::kFlagPersistent;
  FileDescriptor fd = pending.publish();
  auto owner = new_owner(options.directory, name, options.persistent);
  MemoryMap map = MemoryMap::private_copy_on_write(fd.get(), writer.total_size());
  return std::make_shared<MappedRegion>(options.directory, name, std::move(map), std::move(owner));
}

std::shared_ptr<MappedRegion> open_mapped_region(const std::string& directory,
                                                 const std::string& name) {
  if (!names::is_valid_region_name(name))
    throw Error(ErrorKind::InvalidArgument, "invalid region name '" + name + "'");
  OpenedRegion opened = open_region(directory, name);
  if (opened.size < sizeof(format::RegionHeader))
    throw Error(ErrorKind::Corrupt, "shared region '" + name + "' is corrupt: it is shorter than "
                                    "a region header");
  MemoryMap map = MemoryMap::private_copy_on_write(opened.fd.get(), opened.size);
  return std::make_shared<MappedRegion>(directory, name, std::move(map),
                                        live_owner(region_path(directory, name)));
}

namespace {

// ".shmr_tmp_<pid>_<name>" -> pid, or 0 when the name has another shape.
int64_t temporary_owner_pid(const std::string& file) {
  const size_t prefix = std::strlen(kTemporaryPrefix);
  if (file.compare(0, prefix, kTemporaryPrefix) != 0) return 0;
  size_t underscore = file.find('_', prefix);
  if (underscore == std::string::npos || underscore == prefix) return 0;
  int64_t pid = 0;
  for (size_t i = prefix; i < underscore; ++i) {
    if (file[i] < '0' || file[i] > '9' || pid > 1000000000) return 0;
    pid = pid * 10 + (file[i] - '0');
  }
  return pid;
}

// nullopt for anything that is not a regular file of this user: such
// entries are neither listed nor pruned.
std::optional<RegionSummary> summarize(const std::string& directory, const std::string& file) {
  RegionSummary summary;
  summary.name = file;
  int64_t temp_pid = temporary_owner_pid(file);
  summary.temporary = temp_pid != 0;
  int fd = ::open(region_path(directory, file).c_str(),
                  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  FileDescriptor guard(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
    return std::nullopt;
  summary.size = static_cast<uint64_t>(st.st_size);
  if (summary.temporary) {
    summary.creator.pid = temp_pid;
    summary.creator_alive = process::is_alive(summary.creator);
    return summary;
  }
  format::RegionHeader header;
  if (!read_region_header(fd, header)) return summary;
  summary.valid = true;
  summary.creator = {header.creator_pid, header.creator_start_ticks};
  summary.creator_alive = process::is_alive(summary.creator);
  summary.persistent = (header.flags & format::kFlagPersistent) != 0;
  summary.created_unix_ms = header.created_unix_ms;
  summary.format_version = header.format_version;
  summary.original_class.assign(header.original_class,
                                strnlen(header.original_class, sizeof header.original_class));
  return summary;
}

}  // namespace

std::vector<RegionSummary> list_regions(const std::string& directory) {
  std::vector<RegionSummary> out;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return out;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(dir, ::closedir);
  while (struct dirent* entry = ::readdir(dir)) {
    std::string file = entry->d_name;
    if (!names::is_valid_region_name(file) && temporary_owner_pid(file) == 0) continue;
    if (auto summary = summarize(directory, file)) out.push_back(std::move(*summary));
  }
  return out;
}

std::vector<std::string> prune_regions(const std::string& directory) {
  std::vector<std::string> removed;
  for (const RegionSummary& region : list_regions(directory)) {
    if (region.persistent || region.creator_alive) continue;
    // A file without a readable header and without a temporary name has no
    // creator we could ask about; it is not ours to judge.
    if (!region.valid && !region.temporary) continue;
    // Only regular files of this user are ours to remove (a temporary name
    // alone says nothing about who wrote it, and root may unlink anything).
    const std::string path = region_path(directory, region.name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
      continue;
    if (::unlink(path.c_str()) == 0) removed.push_back(region.name);
  }
  return removed;
}

}  // namespace shmr
