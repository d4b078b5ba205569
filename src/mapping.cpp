#include "mapping.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/pages.h"
#include "list_registry.h"

namespace shmr::glue {
namespace {

// Mappings of one file that later objects may reuse; more can exist (one
// per written object), but lookups look at these only, so a lookup costs
// the same however many mappings are live.
constexpr size_t kReusablePerRegion = 8;
// Idle mappings kept for reuse, across all regions.
constexpr size_t kIdleMappings = 8;
// Lookups between two checks of an idle mapping's region.
constexpr uint64_t kCheckIdleEvery = 8;
// Live mappings at which the next new one first runs the garbage collector
// (the kernel allows 65,530 mappings per process by default, and R's own
// large allocations need some of them). Each such collection is a full one:
// a loop that maps and drops objects pays its cost once per this many maps
// (at 1,000, about 40 us per map with mirai loaded).
constexpr uint64_t kCollectAtMappings = 4096;

// The mappings the kernel allows a process (vm.max_map_count).
uint64_t allowed_mappings() {
  static const uint64_t allowed = [] {
    uint64_t value = 65530;
    if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      unsigned long long read = 0;
      if (std::fscanf(f, "%llu", &read) == 1 && read > 0) value = read;
      std::fclose(f);
    }
    return value;
  }();
  return allowed;
}

// Live mappings past which no further mapping of a file already mapped is
// made (the objects that would need one copy their data instead): half of
// what the kernel allows a process, the rest left to R and the libraries.
uint64_t second_mapping_limit() { return std::max<uint64_t>(allowed_mappings() / 2, 256); }

// Live mappings past which no mapping at all is made. Mapping up to the
// kernel's limit itself left R unable to allocate a large vector, read a
// file or load a package until objects were dropped: an eighth of the
// limit stays for R and the libraries.
uint64_t new_mapping_limit() {
  const uint64_t allowed = allowed_mappings();
  const uint64_t reserve = std::min<uint64_t>(std::max<uint64_t>(allowed / 8, 1024), allowed / 2);
  return std::max<uint64_t>(allowed - reserve, second_mapping_limit());
}

struct FileKey {
  uint64_t device;
  uint64_t inode;
  bool operator==(const FileKey& other) const noexcept {
    return device == other.device && inode == other.inode;
  }
};

struct FileKeyHash {
  size_t operator()(const FileKey& key) const noexcept {
    return std::hash<uint64_t>()(key.inode * 0x9e3779b97f4a7c15ull ^ key.device);
  }
};

FileKey key_of(const FileStamp& stamp) { return {stamp.device, stamp.inode}; }

}  // namespace

// The mappings of one region file in this process.
struct RegionGroup {
  struct Member {
    Mapping* raw;  // identifies the member while it is being destroyed
    std::weak_ptr<Mapping> mapping;
  };
  FileStamp stamp;
  RegionLocation location;     // where to open the file again
  std::vector<Member> reusable;  // at most kReusablePerRegion
  uint64_t members = 0;          // all live mappings of the file
  std::shared_ptr<MappedRegion> idle;
  uint64_t idle_since = 0;  // the sweep count when it went idle
  bool indexed = false;     // the registry finds this group for its file
};

class MappingRegistry {
 public:
  static MappingRegistry& get() {
    static MappingRegistry* instance = new MappingRegistry();  // never destroyed: ~Mapping may run at exit
    return *instance;
  }

  // With `unused`, only a mapping no object reads is reused: close() of
  // one map_shared() result then never closes another's.
  std::shared_ptr<Mapping> open(const std::string& name, bool unused) {
    check_one_idle();
    RegionFile file = open_region_file(shm_directory(), name);
    if (std::shared_ptr<RegionGroup> group = find(file.file.stamp)) {
      if (auto reused = first_reusable(*group, nullptr, 0, unused ? Want::Unused : Want::Any))
        return reused;
      if (group->idle) return adopt_idle(group);
      // The limit of new_of_same_file(): map_shared() in a loop that keeps
      // its results would otherwise map until R itself cannot allocate. A
      // mapping of the file in use (mapping_for_unserialize()) can still
      // be read to copy from.
      if (unused && live_ >= second_mapping_limit())
        throw MappingLimitReached(ErrorKind::NoSpace,
                                  "this process has " + std::to_string(live_) +
                                      " mappings of shared regions: no other mapping of '" + name +
                                      "' is made");
    }
    refuse_past_limit();
    auto mapping = std::make_shared<Mapping>(map_region_file(std::move(file)));
    remember(mapping);
    return mapping;
  }

  std::shared_ptr<Mapping> open_new(const std::string& name) {
    refuse_past_limit();
    auto mapping = std::make_shared<Mapping>(open_mapped_region(shm_directory(), name));
    remember(mapping);
    return mapping;
  }

  std::shared_ptr<Mapping> other_for_view(const std::shared_ptr<Mapping>& preferred, uint64_t node) {
    const std::string& name = preferred->region().name();
    if (preferred->is_detached())
      throw Error(ErrorKind::NotFound,
                  "shared region '" + name + "' has no name any more: its data cannot be mapped again");
    remember(preferred);
    std::shared_ptr<RegionGroup> group = preferred->group_;
    if (!group) throw Error(ErrorKind::System, "cannot identify the file of shared region '" + name + "'");
    if (auto reused = first_reusable(*group, preferred.get(), node, Want::FreeForNode)) return reused;
    if (group->idle && group->indexed) return adopt_idle(group);
    return new_of_same_file(preferred);
  }

  // A new mapping of the file `mapped` maps, through its name: if the name
  // now leads elsewhere, this file can no longer be mapped.
  std::shared_ptr<Mapping> new_of_same_file(const std::shared_ptr<Mapping>& mapped) {
    const std::string& name = mapped->region().name();
    if (live_ >= second_mapping_limit())
      throw MappingLimitReached(ErrorKind::NoSpace,
                                "this process has " + std::to_string(live_) +
                                    " mappings of shared regions: no other mapping of '" + name +
                                    "' is made");
    remember(mapped);
    std::shared_ptr<RegionGroup> group = mapped->group_;
    if (!group) throw Error(ErrorKind::System, "cannot identify the file of shared region '" + name + "'");
    RegionFile file = open_region_file(group->location.shm_directory, group->location.name);
    if (file.file.stamp != group->stamp)
      throw Error(ErrorKind::NotFound,
                  "shared region '" + name + "' was removed or replaced since it was mapped");
    auto mapping = std::make_shared<Mapping>(map_region_file(std::move(file)));
    join(mapping, group);
    return mapping;
  }

  void remember(const std::shared_ptr<Mapping>& mapping) {
    if (mapping->group_) return;
    const FileStamp& stamp = mapping->region_->stamp();
    if (stamp.inode == 0 && stamp.device == 0) return;  // unknown file: never reused
    ++examined_;
    std::shared_ptr<RegionGroup>& slot = groups_[key_of(stamp)];
    if (slot && slot->stamp != stamp) {
      // Another incarnation of this inode number: the old group keeps its
      // mappings but is found no more.
      slot->indexed = false;
      slot.reset();
    }
    if (!slot) {
      slot = std::make_shared<RegionGroup>();
      slot->stamp = stamp;
      slot->location = mapping->region_->location();
      slot->indexed = true;
    }
    join(mapping, slot);
  }

  // From ~Mapping: the mapping leaves its group; its pages may stay, idle.
  void forget(Mapping& mapping) noexcept {
    --live_;
    std::shared_ptr<RegionGroup> group = std::move(mapping.group_);
    if (!group) return;
    leave_reusable(*group, &mapping);
    --group->members;
    try {
      if (can_keep_idle(mapping, *group)) keep_idle(group, mapping.region_);
    } catch (...) {
      // Keeping it is an optimisation; the mapping simply goes.
    }
    unindex_if_unused(group);
  }

  void detach(Mapping& mapping) noexcept {
    if (mapping.group_) leave_reusable(*mapping.group_, &mapping);
  }

  void added() noexcept { ++live_; }

  // At each garbage collection: idle mappings that stayed idle through the
  // previous one go, and so do those whose region was removed.
  void sweep() noexcept {
    ++sweeps_;
    std::vector<std::shared_ptr<RegionGroup>> drop;
    for (const auto& entry : idle_) {
      ++examined_;
      auto group = entry.lock();
      if (group && group->idle && (group->idle_since + 1 < sweeps_ || !still_named(*group)))
        drop.push_back(std::move(group));
    }
    for (auto& group : drop) drop_idle_of(group);
    compact_idle();
  }

  void drop_idle_named(const std::string& name) noexcept {
    std::vector<std::shared_ptr<RegionGroup>> drop;
    for (const auto& entry : idle_) {
      auto group = entry.lock();
      if (group && group->idle && group->location.name == name) drop.push_back(std::move(group));
    }
    for (auto& group : drop) drop_idle_of(group);
    compact_idle();
  }

  // R context (see collect_if_many_mappings()). Never later than at the
  // limit: objects no longer referenced may give their mappings back.
  void collect_if_many() {
    if (live_ < collect_at_) return;
    R_gc();
    ++collections_;
    collect_at_ = std::max(kCollectAtMappings, std::min(2 * live_, new_mapping_limit()));
  }

  void refuse_past_limit() const {
    if (live_ < new_mapping_limit()) return;
    throw Error(ErrorKind::NoSpace,
                "this process has " + std::to_string(live_) +
                    " mappings of shared regions, near the limit of the kernel (vm.max_map_count: " +
                    std::to_string(allowed_mappings()) +
                    "), whose rest R needs: close() shared objects no longer needed, or share them "
                    "together in one list");
  }

  MappingStats stats() const {
    MappingStats s;
    s.live = live_;
    s.groups = groups_.size();
    for (const auto& entry : idle_)
      if (auto group = entry.lock(); group && group->idle) ++s.idle;
    s.examined = examined_;
    s.collections = collections_;
    return s;
  }

 private:
  MappingRegistry() = default;

  std::shared_ptr<RegionGroup> find(const FileStamp& stamp) {
    ++examined_;
    auto found = groups_.find(key_of(stamp));
    if (found == groups_.end() || found->second->stamp != stamp) return nullptr;
    return found->second;
  }

  enum class Want { Any, Unused, FreeForNode };

  // A reusable member other than `except`: any, one no view reads, or one
  // that may take a new view of `node`.
  std::shared_ptr<Mapping> first_reusable(RegionGroup& group, const Mapping* except, uint64_t node,
                                          Want want) {
    for (const auto& member : group.reusable) {
      ++examined_;
      if (member.raw == except) continue;
      auto mapping = member.mapping.lock();
      if (!mapping || mapping->is_closed() || mapping->is_detached()) continue;
      if (want == Want::Unused && !mapping->live_views_.empty()) continue;
      if (want == Want::FreeForNode && mapping->refuses_new_view_of(node)) continue;
      return mapping;
    }
    return nullptr;
  }

  std::shared_ptr<Mapping> adopt_idle(const std::shared_ptr<RegionGroup>& group) {
    auto mapping = std::make_shared<Mapping>(std::move(group->idle));
    join(mapping, group);
    return mapping;
  }

  void join(const std::shared_ptr<Mapping>& mapping, const std::shared_ptr<RegionGroup>& group) {
    mapping->group_ = group;
    ++group->members;
    if (group->reusable.size() < kReusablePerRegion)
      group->reusable.push_back({mapping.get(), mapping});
  }

  void leave_reusable(RegionGroup& group, const Mapping* mapping) noexcept {
    for (auto it = group.reusable.begin(); it != group.reusable.end(); ++it) {
      ++examined_;
      if (it->raw == mapping) {
        group.reusable.erase(it);
        return;
      }
    }
  }

  // True while the region's name still leads to this file.
  static bool still_named(const RegionGroup& group) noexcept {
    return where_name_leads(group.location, group.stamp) == NameLeads::Here;
  }

  // Only pages nobody wrote, of a region that exists, in a process that
  // does not own it (its creator removes it with its last object).
  bool can_keep_idle(const Mapping& mapping, const RegionGroup& group) const noexcept {
    const MappedRegion& region = *mapping.region_;
    return group.indexed && !group.idle && !mapping.detached_ && mapping.written_nodes_.empty() &&
           !region.is_owner() && !region.is_closed() && region.access() != Access::SharedReadOnly &&
           still_named(group);
  }

  void keep_idle(const std::shared_ptr<RegionGroup>& group, std::shared_ptr<MappedRegion> region) {
    compact_idle();
    if (idle_.size() >= kIdleMappings) {
      if (auto oldest = idle_.front().lock()) drop_idle_of(oldest);
      idle_.erase(idle_.begin());
    }
    idle_.push_back(group);
    group->idle = std::move(region);
    group->idle_since = sweeps_;
  }

  // Every kCheckIdleEvery lookups, one idle mapping (the next in turn) is
  // checked for its region's removal: a removed region's pages go a bounded
  // number of lookups later, and a lookup costs no extra system call.
  void check_one_idle() noexcept {
    if (idle_.empty() || ++lookups_ % kCheckIdleEvery != 0) return;
    ++examined_;
    auto group = idle_[next_check_++ % idle_.size()].lock();
    if (group && group->idle && !still_named(*group)) {
      drop_idle_of(group);
      compact_idle();
    }
  }

  void drop_idle_of(const std::shared_ptr<RegionGroup>& group) noexcept {
    group->idle.reset();
    unindex_if_unused(group);
  }

  void compact_idle() noexcept {
    idle_.erase(std::remove_if(idle_.begin(), idle_.end(),
                               [](const std::weak_ptr<RegionGroup>& entry) {
                                 auto group = entry.lock();
                                 return !group || !group->idle;
                               }),
                idle_.end());
  }

  void unindex_if_unused(const std::shared_ptr<RegionGroup>& group) noexcept {
    if (group->members != 0 || group->idle || !group->indexed) return;
    group->indexed = false;
    auto found = groups_.find(key_of(group->stamp));
    if (found != groups_.end() && found->second == group) groups_.erase(found);
  }

  std::unordered_map<FileKey, std::shared_ptr<RegionGroup>, FileKeyHash> groups_;
  std::vector<std::weak_ptr<RegionGroup>> idle_;  // oldest first
  uint64_t live_ = 0;
  uint64_t sweeps_ = 0;
  uint64_t examined_ = 0;
  uint64_t collections_ = 0;
  uint64_t collect_at_ = kCollectAtMappings;
  size_t next_check_ = 0;
  uint64_t lookups_ = 0;
};

Mapping::Mapping(std::shared_ptr<MappedRegion> region) : region_(std::move(region)) {
  MappingRegistry::get().added();
}

Mapping::~Mapping() {
  forget_lists_of(this);
  MappingRegistry::get().forget(*this);
}

void Mapping::detach() noexcept {
  detached_ = true;
  MappingRegistry::get().detach(*this);
}

bool Mapping::name_still_leads_here() const noexcept {
  return !detached_ && !name_leads_elsewhere(region_->location(), region_->stamp());
}

bool Mapping::name_opens_here() const noexcept {
  if (detached_) return false;
  const NameLeads leads = where_name_leads(region_->location(), region_->stamp());
  return leads != NameLeads::Elsewhere && leads != NameLeads::Nowhere;
}

void Mapping::remove_view(uint64_t node, const void* data, uint64_t size) noexcept {
  auto found = live_views_.find(node);
  if (found == live_views_.end() || --found->second != 0) return;
  live_views_.erase(found);
  // Pages written through the view stay in this mapping after it: the node
  // must not be viewed here again.
  if (writable_pointers_ != 0 && size > 0 && region_->access() == Access::CopyOnWrite &&
      !region_->is_closed() && pages::has_private_copies(data, size)) {
    try {
      written_nodes_.insert(node);
    } catch (...) {
      detached_ = true;  // cannot record it: let nothing new read this mapping
      MappingRegistry::get().detach(*this);
    }
  }
}

bool Mapping::refuses_new_view_of(uint64_t node) const {
  return region_->access() == Access::CopyOnWrite &&
         (live_views_.count(node) != 0 || written_nodes_.count(node) != 0);
}

std::string shm_directory() { return default_shm_directory(); }

std::shared_ptr<Mapping> open_mapping(const std::string& name) {
  return MappingRegistry::get().open(name, true);
}

std::shared_ptr<Mapping> open_new_mapping(const std::string& name) {
  return MappingRegistry::get().open_new(name);
}

std::shared_ptr<Mapping> mapping_for_unserialize(const std::string& name) {
  return MappingRegistry::get().open(name, false);
}

std::shared_ptr<Mapping> mapping_for_node(const std::string& name, uint64_t node) {
  return mapping_for_view(mapping_for_unserialize(name), node, true);
}

std::shared_ptr<Mapping> mapping_for_view(const std::shared_ptr<Mapping>& preferred, uint64_t node,
                                          bool fixed_width) {
  if (!fixed_width || !preferred->refuses_new_view_of(node)) return preferred;
  return MappingRegistry::get().other_for_view(preferred, node);
}

std::shared_ptr<Mapping> other_mapping_of_file(const std::shared_ptr<Mapping>& mapped, uint64_t node,
                                               bool fresh) {
  if (fresh) return MappingRegistry::get().new_of_same_file(mapped);
  return MappingRegistry::get().other_for_view(mapped, node);
}

bool is_buffer_region(const RegionReader& reader) {
  const auto& header = reader.header();
  return std::strncmp(header.original_class, "shmr_buffer", sizeof header.original_class) == 0;
}

void remember_mapping(const std::shared_ptr<Mapping>& mapping) {
  MappingRegistry::get().remember(mapping);
}

void drop_idle_mappings(const std::string& name) noexcept {
  MappingRegistry::get().drop_idle_named(name);
}

namespace {

bool watching = false;

void on_garbage_collection(SEXP sentinel) {
  R_ClearExternalPtr(sentinel);
  watching = false;
  MappingRegistry::get().sweep();
}

}  // namespace

// The sentinel is an unreferenced object, so the next collection finalizes
// it. It is armed again from an entry point, never from inside a finalizer:
// R may lose finalizers registered while it runs finalizers.
void watch_idle_mappings() {
  if (watching) return;
  SEXP sentinel = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(sentinel, on_garbage_collection, FALSE);
  UNPROTECT(1);
  watching = true;
}

void collect_if_many_mappings() {
  watch_idle_mappings();
  MappingRegistry::get().collect_if_many();
}

void check_room_for_new_mapping() { MappingRegistry::get().refuse_past_limit(); }

MappingStats mapping_stats() { return MappingRegistry::get().stats(); }

}  // namespace shmr::glue
