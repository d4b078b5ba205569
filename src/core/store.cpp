#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>

#include "creator.h"
#include "error.h"
#include "listing.h"
#include "locator.h"
#include "names.h"
#include "process.h"
#include "termination.h"

namespace shmr {

MappedRegion::MappedRegion(RegionLocation location, Access access, MemoryMap map,
                           std::shared_ptr<RegionOwner> owner, FileStamp stamp,
                           std::vector<unsigned char> first_bytes)
    : location_(std::move(location)),
      access_(access),
      map_(std::move(map)),
      first_bytes_(std::move(first_bytes)),
      reader_(map_.data(), map_.size(), location_.name,
              first_bytes_.empty() ? nullptr : first_bytes_.data(), first_bytes_.size()),
      owner_(std::move(owner)),
      stamp_(stamp) {}

void MappedRegion::close(Removal removal) {
  if (closed_) return;
  closed_ = true;
  // The region is removed while this mapping still holds its pages: once
  // they go, a removed file's inode may be reused, and the owner's identity
  // check could then match a stranger's file.
  switch (removal) {
    case Removal::AsOwner:
      if (owner_) owner_->release();
      break;
    case Removal::Leave:
      break;
    case Removal::Keep:
      if (owner_) owner_->keep();
      break;
    case Removal::Remove:
      if (owner_) owner_->keep();
      remove_region_files(location_);
      break;
  }
  map_.replace_with_zero_pages();
}

void MappedRegion::protect() { map_.protect_read_only(); }

namespace {

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// The file's first bytes (at most a page): its header, and for a small
// object all the records the reader needs. One pread costs less than the
// first page fault of a new mapping (tens of microseconds on a virtual
// machine), for the process that maps a region and for the one that made it.
constexpr uint64_t kFirstBytes = 4096;

// Only the part the reader takes from the copy is kept (the header and the
// node table, when the page holds them): every mapping keeps its copy, and a
// page of heap per mapping is a page fault per map in a new process.
std::vector<unsigned char> first_bytes_of(int fd, uint64_t file_size, const std::string& name) {
  unsigned char page[kFirstBytes];
  const size_t wanted = static_cast<size_t>(std::min<uint64_t>(file_size, kFirstBytes));
  size_t got = 0;
  while (got < wanted) {
    ssize_t n = ::pread(fd, page + got, wanted - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_system_error("cannot read region " + name, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  size_t kept = got;
  format::RegionHeader header;
  if (got >= sizeof header) {
    std::memcpy(&header, page, sizeof header);
    const uint64_t table = header.node_table_offset;
    const uint64_t records = header.node_count;
    if (table <= got && records <= (got - table) / sizeof(format::NodeRecord))
      kept = std::max<size_t>(static_cast<size_t>(table + records * sizeof(format::NodeRecord)),
                              std::min<size_t>(got, format::kHeaderSizeV2));
  }
  return std::vector<unsigned char>(page, page + kept);
}

MemoryMap map_with(Access access, int fd, uint64_t size) {
  switch (access) {
    case Access::CopyOnWrite:
      return MemoryMap::private_copy_on_write(fd, size);
    case Access::SharedReadOnly:
      return MemoryMap::shared_read_only(fd, size);
    case Access::SharedWritable:
      return MemoryMap::shared_writable(fd, size);
  }
  throw Error(ErrorKind::InvalidArgument, "unknown access mode");
}

}  // namespace

namespace {

// The header flags of a new region: how later mappings map it, and whether
// its creator and prune_regions() may remove it.
uint64_t header_flags(uint64_t description_flags, const CreateOptions& options) {
  uint64_t flags = options.writable ? description_flags & ~format::kFlagReadonly
                                    : description_flags | format::kFlagReadonly;
  if (options.persistent) flags |= format::kFlagPersistent;
  return flags;
}

// A locator published before its region's data file. Unless committed, it
// is removed again (if it is still the file we published).
class PublishedLocator {
 public:
  PublishedLocator(const RegionLocation& location, const Locator& locator) : path_(location.name_path()) {
    termination::DeferredSignals defer;
    publish_locator(location.shm_directory, location.name, locator);
    identity_ = FileIdentity::of(path_);
    removal_at_termination_ = termination::Entry({path_, identity_.device, identity_.inode}, {});
  }
  PublishedLocator(const PublishedLocator&) = delete;
  PublishedLocator& operator=(const PublishedLocator&) = delete;
  ~PublishedLocator() {
    // The entry goes with the members, after the file.
    if (!committed_ && still_published()) ::unlink(path_.c_str());
  }
  void commit() { committed_ = true; }
  // False once the locator was removed (remove_shared() of the name while
  // the data file was being written) or replaced.
  bool still_published() const { return FileIdentity::of(path_) == identity_; }
  // Once the region's owner (if any) has its own entry for the locator.
  void drop_termination_entry() { removal_at_termination_.reset(); }

 private:
  std::string path_;
  FileIdentity identity_;
  bool committed_ = false;
  termination::Entry removal_at_termination_;
};

std::shared_ptr<MappedRegion> create_with_backing(const RegionWriter& writer,
                                                  const RegionDescription& description,
                                                  const CreateOptions& options, Backing backing) {
  RegionLocation location;
  location.backing = backing;
  location.shm_directory = options.directory;
  location.data_directory = backing == Backing::Shm ? options.directory : options.data_directory;
  location.name = options.name.empty() ? names::generate() : options.name;
  if (location.data_directory.empty() || location.data_directory[0] != '/')
    throw Error(ErrorKind::InvalidArgument, "a region's directory must be an absolute path");
  if (backing == Backing::File && location.data_directory == location.shm_directory)
    throw Error(ErrorKind::InvalidArgument,
                "a file-backed region needs a directory other than the shm directory " +
                    location.shm_directory);

  process::Identity self = process::current();
  const uint64_t flags = header_flags(description.flags, options);
  // A file-backed region's locator comes first: it takes the name, and if
  // this process is killed while writing, prune_regions() finds the
  // unfinished data file through it. Until the data file is published, the
  // locator leads nowhere and mapping the name fails.
  std::optional<PublishedLocator> locator;
  if (backing == Backing::File) locator.emplace(location, Locator{location.data_path(), self, flags});

  // Written by write calls, never through a mapping (region_sink.h says
  // why). Space is taken as it is written, except where it must be held up
  // front: a segment's zero-filled payload is written later by its users,
  // a disk file system may report a full disk only at writeback, and a
  // generated vector (share(1:1e15)) is refused before any of it is made.
  const bool reserve = writer.has_zero_filled_nodes() || writer.has_generated_nodes() ||
                       backing == Backing::File;
  PendingRegion pending(location.data_directory, location.name, writer.total_size(),
                        reserve ? PendingRegion::Writing::ByDescriptorReserved
                                : PendingRegion::Writing::ByDescriptor);
  {
    FileSink sink(pending.descriptor(), pending.size(), location.data_directory);
    writer.write(sink, self.pid, self.start_ticks, now_unix_ms(), flags, self.pid_namespace);
  }
  // From the region's publication to its owner's claim, a termination
  // signal waits: its handler then finds the owner's entry.
  std::optional<termination::DeferredSignals> defer(std::in_place);
  FileDescriptor fd = pending.publish();
  if (locator) locator->commit();
  // The published name is a link to this descriptor's file: its fstat()
  // gives the file's identity without a lookup by name.
  struct stat st;
  const bool identified = ::fstat(fd.get(), &st) == 0;
  // remove_shared() of the name while the data file was being written found
  // only the locator (the data file was not there yet) and removed it: the
  // region is removed as if just after it was made. Its data file, which
  // nothing leads to any more (no prune would find it after this process
  // died, and it would keep a new region of the name out of this
  // directory), goes now; this process keeps its mapping.
  const bool name_removed = locator && !locator->still_published();
  if (name_removed && identified && FileIdentity::of(location.data_path()) == FileIdentity::of(st))
    ::unlink(location.data_path().c_str());

  FileStamp stamp;
  std::shared_ptr<RegionOwner> owner;
  if (identified) {
    stamp = FileStamp::of(st);
    owner = claim_region(location, options.persistent, FileIdentity::of(st));
  } else {
    owner = claim_region(location, options.persistent);
  }
  // Whatever has the name now is not this region's: its owner removes nothing.
  if (name_removed) owner->keep();
  if (locator) locator->drop_termination_entry();
  defer.reset();
  Access access = options.writable ? Access::SharedWritable : Access::CopyOnWrite;
  MemoryMap map = map_with(access, fd.get(), writer.total_size());
  std::vector<unsigned char> first_bytes = first_bytes_of(fd.get(), writer.total_size(), location.name);
  return std::make_shared<MappedRegion>(std::move(location), access, std::move(map),
                                        std::move(owner), stamp, std::move(first_bytes));
}

}  // namespace

bool has_room(const std::string& directory, uint64_t size, uint64_t capacity) {
  struct statvfs st;
  if (::statvfs(directory.c_str(), &st) != 0) return false;
  uint64_t total = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  uint64_t free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (capacity != 0) {
    total = std::min(total, capacity);
    free = std::min(free, capacity);
  }
  uint64_t margin = std::max<uint64_t>(total / 20, uint64_t{1} << 20);
  return size <= free && free - size >= margin;
}

bool reclaimed_space_of_dead_creators(const std::string& directory) noexcept {
  static std::mutex mutex;
  static std::chrono::steady_clock::time_point last{};
  try {
    {
      std::lock_guard<std::mutex> lock(mutex);
      const auto now = std::chrono::steady_clock::now();
      if (last != std::chrono::steady_clock::time_point{} && now - last < std::chrono::seconds(1))
        return false;
      last = now;
    }
    return !prune_regions(directory, PruneScope::AllRegions).empty();
  } catch (...) {
    return false;
  }
}

std::shared_ptr<MappedRegion> create_region(const RegionDescription& description,
                                            const CreateOptions& options) {
  RegionWriter writer(description);
  bool pruned = false;
  const auto prune_once = [&] {
    if (pruned) return false;
    pruned = true;
    return reclaimed_space_of_dead_creators(options.directory);
  };
  // With the backing chosen for it, or in shm when it is `automatic`: the
  // region, or nullptr when the backing is full (then once more after
  // pruning).
  const auto create_in = [&](Backing backing) -> std::shared_ptr<MappedRegion> {
    for (;;) {
      try {
        return create_with_backing(writer, description, options, backing);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::NoSpace) throw;
        if (!prune_once()) {
          if (options.automatic) return nullptr;
          throw;
        }
      }
    }
  };
  if (!options.automatic) return create_in(options.backing);
  const uint64_t size = writer.total_size();
  if (has_room(options.directory, size, options.shm_capacity) ||
      (prune_once() && has_room(options.directory, size, options.shm_capacity))) {
    if (auto region = create_in(Backing::Shm)) return region;
  }
  return create_with_backing(writer, description, options, Backing::File);
}

RegionLocation locate_region(const std::string& shm_directory, const std::string& name) {
  if (!names::is_valid_region_name(name))
    throw Error(ErrorKind::InvalidArgument, "invalid region name '" + name + "'");
  OpenedRegion opened = open_region(shm_directory, name, false);
  RegionLocation location;
  location.shm_directory = shm_directory;
  location.data_directory = shm_directory;
  location.name = name;
  Locator locator;
  if (read_locator(opened.fd.get(), name, locator)) {
    location.backing = Backing::File;
    location.data_directory = locator.target_path.substr(0, locator.target_path.rfind('/'));
    if (location.data_directory.empty()) location.data_directory = "/";
  }
  return location;
}

namespace {

// A locator is at most its header and the longest path: only a file that
// small needs its first bytes read to tell a locator from a region.
constexpr uint64_t kSmallestRegion = sizeof(format::RegionHeader);
constexpr uint64_t kLargestLocator = sizeof(LocatorHeader) + kMaxLocatorPath;

bool may_be_locator(uint64_t size) { return size >= sizeof(LocatorHeader) && size <= kLargestLocator; }

}  // namespace

RegionFile open_region_file(const std::string& shm_directory, const std::string& name) {
  if (!names::is_valid_region_name(name))
    throw Error(ErrorKind::InvalidArgument, "invalid region name '" + name + "'");
  RegionFile region;
  region.location.shm_directory = shm_directory;
  region.location.data_directory = shm_directory;
  region.location.name = name;
  region.file = open_region(shm_directory, name, OpenMode::ReadWriteIfAllowed);
  Locator locator;
  if (may_be_locator(region.file.size) && read_locator(region.file.fd.get(), name, locator)) {
    region.location.backing = Backing::File;
    region.location.data_directory = locator.target_path.substr(0, locator.target_path.rfind('/'));
    if (region.location.data_directory.empty()) region.location.data_directory = "/";
    region.file = open_region(region.location.data_directory, name, OpenMode::ReadWriteIfAllowed);
  }
  return region;
}

names::RegionMade made_of(const MappedRegion& region) {
  const format::RegionHeader& header = region.reader().header();
  return {region.creator_pid(), header.created_unix_ms, region.stamp().inode};
}

void check_region_made(const MappedRegion& region, const names::RegionMade& made) {
  const names::RegionMade here = made_of(region);
  const bool same_inode = made.inode == 0 || here.inode == 0 || made.inode == here.inode;
  if (here.creator_pid == made.creator_pid && here.created_unix_ms == made.created_unix_ms &&
      same_inode)
    return;
  throw Error(ErrorKind::NotFound,
              "the region this object was read from (made by process " +
                  std::to_string(made.creator_pid) + " at " + std::to_string(made.created_unix_ms) +
                  " ms) was removed, and its name now leads to a newer region (process " +
                  std::to_string(here.creator_pid) + ", " + std::to_string(here.created_unix_ms) +
                  " ms), which is not read in its place");
}

NameLeads where_name_leads(const RegionLocation& location, const FileStamp& stamp) noexcept {
  if (stamp.device == 0 && stamp.inode == 0) return NameLeads::Unknown;
  auto leads = [&stamp](const FileStamp& now) {
    return now.same_file(stamp) ? NameLeads::Here : NameLeads::Elsewhere;
  };
  try {
    if (location.backing == Backing::Shm) {
      // The name is the data file itself: no need to open it.
      struct stat st;
      if (::lstat(location.name_path().c_str(), &st) != 0) {
        return errno == ENOENT ? NameLeads::Nowhere : NameLeads::Unknown;
      }
      return leads(FileStamp::of(st));
    }
    return leads(open_region_file(location.shm_directory, location.name).file.stamp);
  } catch (const Error& e) {
    return e.kind() == ErrorKind::NotFound ? NameLeads::Nowhere : NameLeads::Unknown;
  } catch (...) {
    return NameLeads::Unknown;
  }
}

namespace {

std::vector<unsigned char> first_bytes_of(const RegionFile& region) {
  return first_bytes_of(region.file.fd.get(), region.file.size, region.location.name);
}

std::shared_ptr<MappedRegion> map_with_first_bytes(RegionFile region,
                                                   std::vector<unsigned char> first_bytes,
                                                   Access access) {
  const std::string& name = region.location.name;
  if (region.file.size < kSmallestRegion)
    throw Error(ErrorKind::Corrupt, "shared region '" + name + "' is corrupt: it is shorter than "
                                    "a region header");
  if (access == Access::SharedWritable && !region.file.writable)
    throw Error(ErrorKind::InvalidArgument,
                "writable shared region '" + name + "' cannot be opened for writing by this process");
  MemoryMap map = map_with(access, region.file.fd.get(), region.file.size);
  // The claim of this process, or a new one when the header names it as
  // creator (a region a forked child or a pool worker made for it).
  std::shared_ptr<RegionOwner> owner;
  const FileIdentity data_file{region.file.stamp.device, region.file.stamp.inode};
  if (first_bytes.size() >= sizeof(format::RegionHeader)) {
    format::RegionHeader header;
    std::memcpy(&header, first_bytes.data(), sizeof header);
    owner = claim_for_mapping(region.location, data_file, header);
  } else {
    owner = owner_of(region.location.name_path(), data_file);
  }
  return std::make_shared<MappedRegion>(std::move(region.location), access, std::move(map),
                                        std::move(owner), region.file.stamp,
                                        std::move(first_bytes));
}

}  // namespace

std::shared_ptr<MappedRegion> map_region_file(RegionFile region, Access access) {
  std::vector<unsigned char> first_bytes = first_bytes_of(region);
  return map_with_first_bytes(std::move(region), std::move(first_bytes), access);
}

// The header, read once, says how to map: copy-on-write for a read-only
// region, shared for a writable one. (The reader checks it all again.)
std::shared_ptr<MappedRegion> map_region_file(RegionFile region) {
  std::vector<unsigned char> first_bytes = first_bytes_of(region);
  Access access = Access::CopyOnWrite;
  format::RegionHeader header;
  if (first_bytes.size() >= sizeof header) {
    std::memcpy(&header, first_bytes.data(), sizeof header);
    if (std::memcmp(header.magic, format::kMagic, sizeof header.magic) == 0 &&
        (header.flags & format::kFlagReadonly) == 0)
      access = Access::SharedWritable;
  }
  return map_with_first_bytes(std::move(region), std::move(first_bytes), access);
}

std::shared_ptr<MappedRegion> open_mapped_region(const std::string& shm_directory,
                                                 const std::string& name) {
  return map_region_file(open_region_file(shm_directory, name));
}

std::shared_ptr<MappedRegion> open_mapped_region(const std::string& shm_directory,
                                                 const std::string& name, Access access) {
  return map_region_file(open_region_file(shm_directory, name), access);
}

}  // namespace shmr
