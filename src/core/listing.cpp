#include "listing.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>

#include "creator.h"
#include "decimal.h"
#include "error.h"
#include "format.h"
#include "locator.h"
#include "names.h"
#include "reader.h"
#include "region_file.h"

namespace shmr {
namespace {

// ".shmr_tmp_<pid>_<name>" -> pid, or 0 when the name has another shape.
int64_t temporary_owner_pid(const std::string& file) {
  const size_t prefix = std::strlen(kTemporaryPrefix);
  if (file.compare(0, prefix, kTemporaryPrefix) != 0) return 0;
  size_t underscore = file.find('_', prefix);
  if (underscore == std::string::npos || underscore == prefix) return 0;
  auto pid = parse_decimal(std::string_view(file).substr(prefix, underscore - prefix), 10);
  return pid ? static_cast<int64_t>(*pid) : 0;
}

// An open regular file of this user, or an invalid descriptor.
FileDescriptor open_own_file(const std::string& path, struct stat& st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return FileDescriptor();
  FileDescriptor guard(fd);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
    return FileDescriptor();
  return guard;
}

void judge_creator(RegionSummary& summary, process::Census& census) {
  summary.creator_state = process::liveness(summary.creator, census);
  summary.creator_alive = summary.creator_state == process::Liveness::Alive;
}

void fill_from_header(int fd, RegionSummary& summary, process::Census& census) {
  format::RegionHeader header;
  if (!read_region_header(fd, header)) return;
  summary.shmr_magic = true;
  summary.valid = true;
  summary.complete = true;
  summary.creator = format::creator_of(header);
  format::ReplicaRecord record;
  if (read_replica_record(fd, header, record)) {
    // The creator lives on another host; what counts here is the keeper.
    summary.replica = true;
    summary.origin_host = record.origin_host;
    summary.creator = format::keeper_of(record);
  }
  judge_creator(summary, census);
  summary.persistent = (header.flags & format::kFlagPersistent) != 0;
  summary.writable = (header.flags & format::kFlagReadonly) == 0;
  summary.created_unix_ms = header.created_unix_ms;
  summary.format_version = header.format_version;
  summary.original_class.assign(header.original_class,
                                strnlen(header.original_class, sizeof header.original_class));
}

// nullopt for anything that is not a regular file of this user: such
// entries are neither listed nor pruned.
std::optional<RegionSummary> summarize(const std::string& directory, const std::string& file,
                                       process::Census& census) {
  RegionSummary summary;
  summary.name = file;
  summary.data_path = region_path(directory, file);
  int64_t temp_pid = temporary_owner_pid(file);
  summary.temporary = temp_pid != 0;
  struct stat st;
  FileDescriptor fd = open_own_file(summary.data_path, st);
  if (fd.get() < 0) return std::nullopt;
  summary.size = static_cast<uint64_t>(st.st_size);
  summary.name_file = FileIdentity::of(st);
  if (summary.temporary) {
    summary.creator.pid = temp_pid;
    judge_creator(summary, census);
    return summary;
  }
  Locator locator;
  bool is_locator = false;
  try {
    is_locator = read_locator(fd.get(), file, locator);
  } catch (const Error&) {
    summary.shmr_magic = true;
    return summary;  // a corrupt locator: listed, never pruned
  }
  if (!is_locator) {
    fill_from_header(fd.get(), summary, census);
    return summary;
  }
  summary.backing = Backing::File;
  summary.shmr_magic = true;
  summary.data_path = locator.target_path;
  // Until the data file is read, the locator speaks for the region.
  summary.valid = true;
  summary.creator = locator.creator;
  judge_creator(summary, census);
  summary.persistent = (locator.flags & format::kFlagPersistent) != 0;
  summary.size = 0;
  FileDescriptor data = open_own_file(locator.target_path, st);
  if (data.get() >= 0) {
    summary.size = static_cast<uint64_t>(st.st_size);
    summary.data_file = FileIdentity::of(st);
    fill_from_header(data.get(), summary, census);
  }
  return summary;
}

RegionLocation location_of(const std::string& directory, const RegionSummary& region) {
  RegionLocation location;
  location.backing = region.backing;
  location.shm_directory = directory;
  location.name = region.name;
  location.data_directory = region.backing == Backing::File
                                ? region.data_path.substr(0, region.data_path.rfind('/'))
                                : directory;
  return location;
}

}  // namespace

std::vector<RegionSummary> list_regions(const std::string& directory) {
  process::Census census;
  return list_regions(directory, census);
}

std::vector<RegionSummary> list_regions(const std::string& directory, process::Census& census) {
  std::vector<RegionSummary> out;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return out;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(dir, ::closedir);
  while (struct dirent* entry = ::readdir(dir)) {
    std::string file = entry->d_name;
    if (!names::is_valid_region_name(file) && temporary_owner_pid(file) == 0) continue;
    if (auto summary = summarize(directory, file, census)) out.push_back(std::move(*summary));
  }
  return out;
}

std::optional<RegionSummary> find_region(const std::string& directory, const std::string& name) {
  if (!names::is_valid_region_name(name)) return std::nullopt;
  process::Census census;
  return summarize(directory, name, census);
}

namespace {

bool is_own_regular_file(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid();
}

}  // namespace

bool region_file_present(const std::string& directory, const std::string& name) {
  return names::is_valid_region_name(name) && is_own_regular_file(region_path(directory, name));
}

namespace {

// A file-backed region's creator publishes the locator first, then writes
// the data file under a temporary name next to where it goes. Removes that
// temporary file of a dead creator; true when the region never got further
// (no data file), so its locator leads nowhere for good.
bool remove_unfinished_data_file(const RegionSummary& region) {
  if (region.backing != Backing::File || region.creator_state != process::Liveness::Dead ||
      region.creator.pid <= 0)
    return false;
  const std::string data_directory = region.data_path.substr(0, region.data_path.rfind('/'));
  const std::string temp = region_path(data_directory, temporary_name(region.creator.pid, region.name));
  if (!is_own_regular_file(temp) || ::unlink(temp.c_str()) != 0) return false;
  struct stat st;
  return ::lstat(region.data_path.c_str(), &st) != 0;
}

// A copy kept as a file reserves its locator under a temporary name, filled
// at once, before its data file (src/core/replica.cpp): for a fetcher killed
// midway, that locator leads to its unfinished data file, which no other
// name leads to (it is in the dead process's session directory).
void remove_data_file_of_unfinished_locator(const std::string& directory,
                                            const RegionSummary& region) noexcept {
  try {
    if (!region.temporary || region.creator_state != process::Liveness::Dead || region.creator.pid <= 0)
      return;
    const size_t prefix = std::strlen(kTemporaryPrefix) + std::to_string(region.creator.pid).size() + 1;
    if (region.name.size() <= prefix) return;
    const std::string name = region.name.substr(prefix);
    if (!names::is_valid_region_name(name) || temporary_name(region.creator.pid, name) != region.name)
      return;
    struct stat st;
    FileDescriptor fd = open_own_file(region_path(directory, region.name), st);
    Locator locator;
    if (fd.get() < 0 || !read_locator(fd.get(), name, locator)) return;
    const std::string data_directory = locator.target_path.substr(0, locator.target_path.rfind('/'));
    const std::string temp = region_path(data_directory, temporary_name(region.creator.pid, name));
    if (is_own_regular_file(temp)) ::unlink(temp.c_str());
  } catch (...) {
    // A corrupt or unreadable file: nothing is known to lead anywhere.
  }
}

// Whether the region under `listed.name` is still the one listed: the same
// files, the same creator and creation time. A region removed since and
// re-created under the same name (by a live process, after another prune
// removed the dead creator's region, say) is not the one that was judged.
// The files alone do not tell: a file system other than tmpfs may give a
// new file the inode number of one just removed.
bool is_still_listed(const std::string& directory, const RegionSummary& listed,
                     process::Census& census) {
  auto now = summarize(directory, listed.name, census);
  return now && now->name_file == listed.name_file && now->data_file == listed.data_file &&
         now->backing == listed.backing && now->data_path == listed.data_path &&
         now->creator.pid == listed.creator.pid &&
         now->creator.start_ticks == listed.creator.start_ticks &&
         now->created_unix_ms == listed.created_unix_ms;
}

// Removes the files of a listed region, only while it is still the region
// listed (is_still_listed()). True when something was removed.
bool remove_listed_files(const std::string& directory, const RegionSummary& region,
                         process::Census& census) {
  if (!is_still_listed(directory, region, census)) return false;
  if (region.temporary) return ::unlink(region_path(directory, region.name).c_str()) == 0;
  return remove_region_files(location_of(directory, region));
}

}  // namespace

std::vector<std::string> prune_regions(const std::string& directory, PruneScope scope,
                                       const std::optional<std::set<int64_t>>& creator_pids) {
  process::Census census;
  return prune_listed_regions(directory, list_regions(directory, census), scope, creator_pids);
}

std::vector<std::string> prune_listed_regions(const std::string& directory,
                                              const std::vector<RegionSummary>& listed,
                                              PruneScope scope,
                                              const std::optional<std::set<int64_t>>& creator_pids) {
  std::vector<std::string> removed;
  process::Census census;
  for (const RegionSummary& region : listed) {
    if (region.creator_state != process::Liveness::Dead) continue;
    if (creator_pids && creator_pids->count(region.creator.pid) == 0) continue;
    if (scope == PruneScope::CopiesAndUnfinished && !region.replica && !region.temporary) continue;
    // Even a persistent region goes when it was never finished.
    const bool unfinished = remove_unfinished_data_file(region);
    remove_data_file_of_unfinished_locator(directory, region);
    if (region.persistent && !unfinished) continue;
    // A file without a readable header and without a temporary name has no
    // creator we could ask about; it is not ours to judge.
    if (!region.valid && !region.temporary) continue;
    // Only regular files of this user are ours to remove (a temporary name
    // alone says nothing about who wrote it, and root may unlink anything).
    const std::string name_path = region_path(directory, region.name);
    if (!is_own_regular_file(name_path)) continue;
    struct stat st;
    // Likewise the data file a locator leads to, when there is one.
    if (region.backing == Backing::File && ::lstat(region.data_path.c_str(), &st) == 0 &&
        (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()))
      continue;
    if (remove_listed_files(directory, region, census)) removed.push_back(region.name);
  }
  return removed;
}

std::vector<std::string> remove_regions_created_by(const std::string& directory,
                                                   const process::Identity& creator) {
  std::vector<std::string> removed;
  process::Census census;
  for (const RegionSummary& region : list_regions(directory, census)) {
    // A segment closed with segment_close(unlink = FALSE) is kept for
    // other processes on purpose.
    if (!region.valid || region.temporary || region.persistent || region.replica ||
        region.original_class == "segment" || !process::names_process(region.creator, creator))
      continue;
    if (!is_own_regular_file(region_path(directory, region.name))) continue;
    if (remove_listed_files(directory, region, census)) removed.push_back(region.name);
  }
  return removed;
}

RemovalByName remove_region(const std::string& directory, const std::string& name) {
  if (!names::is_valid_region_name(name)) return RemovalByName::NoRegion;
  process::Census census;
  auto summary = summarize(directory, name, census);
  if (!summary) return RemovalByName::NoRegion;
  if (!summary->shmr_magic && !summary->temporary) return RemovalByName::NotARegion;
  bool unfinished = remove_unfinished_data_file(*summary);
  const bool removed = remove_region_files(location_of(directory, *summary)) || unfinished;
  return removed ? RemovalByName::Removed : RemovalByName::NoRegion;
}

}  // namespace shmr
