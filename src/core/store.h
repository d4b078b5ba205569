// The object store: creating regions, finding them by name, and mapping
// them. This is the engine's face towards the R glue.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "names.h"
#include "ownership.h"
#include "reader.h"
#include "region_file.h"
#include "writer.h"

namespace shmr {

enum class Access {
  CopyOnWrite,     // reads share the region's pages; writes stay private
  SharedReadOnly,  // the region's pages, read-only
  SharedWritable,  // the region's pages; writes reach every process
};

// What closing a mapping does to the region itself.
enum class Removal {
  AsOwner,  // the creator removes it (unless persistent); others leave it
  Leave,    // nothing happens to the region or to anyone's claim on it
  Keep,     // nobody removes it now; the creator gives up its claim
  Remove,   // removed now, whoever closes it
};

// A validated mapping of a region.
class MappedRegion {
 public:
  // `first_bytes`: a copy of the file's first bytes, for the reader (see
  // RegionReader); empty when the pages are known to be mapped already.
  MappedRegion(RegionLocation location, Access access, MemoryMap map,
               std::shared_ptr<RegionOwner> owner, FileStamp stamp = {},
               std::vector<unsigned char> first_bytes = {});

  const std::string& name() const noexcept { return location_.name; }
  const std::string& directory() const noexcept { return location_.data_directory; }
  const RegionLocation& location() const noexcept { return location_; }
  Access access() const noexcept { return access_; }
  const RegionReader& reader() const noexcept { return reader_; }
  const MemoryMap& map() const noexcept { return map_; }
  // The data file this maps, as it was when mapped.
  const FileStamp& stamp() const noexcept { return stamp_; }
  bool is_owner() const noexcept { return owner_ != nullptr; }
  bool is_closed() const noexcept { return closed_; }
  // Where the closed state lives, for readers that check it per element.
  const bool* closed_flag() const noexcept { return &closed_; }

  // Lets go of the pages (stale pointers then read zeros), then treats the
  // region as `removal` says.
  void close(Removal removal = Removal::AsOwner);
  // After close() as owner: empty when the region's files went, else the
  // file that stays and why.
  std::string files_left() const { return owner_ ? owner_->files_left() : std::string(); }
  // Makes this process's pages of the region read-only (writes fault).
  void protect();
  // Before the region is sent by name: see RegionOwner::hand_over_for_sending().
  // A replica is this host's copy of another host's region, kept by the
  // host's store: never handed on.
  void hand_over_for_sending() noexcept {
    if (owner_ && !reader_.is_replica()) owner_->hand_over_for_sending();
  }
  // The creator's PID: the header's, or the process the region was handed to.
  int64_t creator_pid() const noexcept {
    return owner_ && owner_->receiver_pid() != 0 ? owner_->receiver_pid()
                                                 : reader_.header().creator_pid;
  }

 private:
  RegionLocation location_;
  Access access_;
  MemoryMap map_;
  std::vector<unsigned char> first_bytes_;
  RegionReader reader_;
  std::shared_ptr<RegionOwner> owner_;
  FileStamp stamp_;
  bool closed_ = false;
};

struct CreateOptions {
  Backing backing = Backing::Shm;
  std::string directory;       // where names live (the shm directory)
  std::string data_directory;  // file backing: where the data file goes
  std::string name;            // empty: generate one
  bool persistent = false;
  bool writable = false;       // mapped shared and writable, not copy-on-write
  // Choose the backing: shm when its file system has room for the region
  // with a margin, else the file backing (also when shm turns out full).
  bool automatic = false;
  uint64_t shm_capacity = 0;   // caps the room assumed in shm; 0: no cap
};

// True when `size` bytes fit in the file system of `directory` with a margin
// of 5% of its size (at least 1 MiB), counting at most `capacity` bytes as
// free when capacity is not 0.
bool has_room(const std::string& directory, uint64_t size, uint64_t capacity);

// Regions whose creator (a copy's keeper) was killed by SIGKILL (the
// out-of-memory killer among others) hold their space until someone prunes
// them: a region or copy that finds no room in `directory` removes them
// first and tries again. True when this removed something. At most once a
// second per process: with shm full and nothing to remove, every automatic
// share falls back to a file, and would otherwise read every region's
// header each time. Never throws.
bool reclaimed_space_of_dead_creators(const std::string& directory) noexcept;

// Writes `description` into a new region, publishes it, and returns the
// creator's own mapping of it (which owns the region). Throws AlreadyExists
// when a chosen name is taken, NoSpace when the file system is full.
std::shared_ptr<MappedRegion> create_region(const RegionDescription& description,
                                            const CreateOptions& options);

// Where the region called `name` is. Throws NotFound or Corrupt.
RegionLocation locate_region(const std::string& shm_directory, const std::string& name);

// The data file of the region called `name`, open and checked (a regular
// file of this user) but not yet mapped: a caller that keeps mappings can
// tell from its stamp whether it maps this file already. One descriptor
// serves the checks and the mapping, so a region removed and created again
// meanwhile is never half one and half the other. Throws NotFound or Corrupt.
struct RegionFile {
  RegionLocation location;
  OpenedRegion file;
};
RegionFile open_region_file(const std::string& shm_directory, const std::string& name);

// Where the name of `location` leads now, for the region whose data file
// `stamp` identifies: to that file; to another one (the region was removed
// and its name taken again, so the name no longer means its data); to
// nothing; or Unknown (the stamp is unknown or nothing could be checked).
enum class NameLeads { Here, Elsewhere, Nowhere, Unknown };
NameLeads where_name_leads(const RegionLocation& location, const FileStamp& stamp) noexcept;

inline bool name_leads_elsewhere(const RegionLocation& location, const FileStamp& stamp) noexcept {
  return where_name_leads(location, stamp) == NameLeads::Elsewhere;
}

// What `region` writes as the "made" field of its objects' states.
names::RegionMade made_of(const MappedRegion& region);

// Throws Error(NotFound) unless `region` is the one `made` names: a stream
// that recorded it may be read after its name was taken again by a newer
// region (FORMAT.md 4, the "made" field), whose data it must not take for
// its own. Inode numbers are compared when both are known.
void check_region_made(const MappedRegion& region, const names::RegionMade& made);

// Maps `region`: copy-on-write when its header says read-only, shared and
// writable otherwise, unless `access` says. The file's first page is read
// (pread) for the header and given to the reader, so mapping touches none of
// the mapped pages. In the process that created it, the mapping shares the
// ownership. Throws Corrupt.
std::shared_ptr<MappedRegion> map_region_file(RegionFile region);
std::shared_ptr<MappedRegion> map_region_file(RegionFile region, Access access);

// open_region_file() then map_region_file().
std::shared_ptr<MappedRegion> open_mapped_region(const std::string& shm_directory,
                                                 const std::string& name);
std::shared_ptr<MappedRegion> open_mapped_region(const std::string& shm_directory,
                                                 const std::string& name, Access access);


}  // namespace shmr
