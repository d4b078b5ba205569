// The mappings of regions in this process, and the rule that keeps a write
// to one R object from showing in another.
//
// A Mapping is one mmap of a region's data file; every view (ALTREP vector)
// reads through one. A read-only region is mapped private and copy-on-write,
// so a write through a view changes that mapping's pages for every view on
// it. Hence the rule, enforced by make_view(): a fixed-width node has at most
// one live view per copy-on-write mapping, and a node whose view wrote pages
// and is gone is never viewed on that mapping again. A second object of the
// same node (a duplicate, a second map_shared(), an unserialize()) goes to
// another mapping of the same file. (Character vectors never write into the
// mapping, writable shares are meant to be seen by all: neither needs it.)
//
// The mappings of one file form a group, found by the file's identity
// (device, inode, size and status-change time: FileStamp), never by name: a
// region removed and created again under the same name is another file. A
// group reuses its mappings: objects unserialized one by one share one, a
// map_shared() takes one no object reads (so close() of its result closes
// nothing else), a duplicate takes any that the rule allows. Every
// bookkeeping step is O(1): a hash lookup and a scan of at most
// kReusablePerRegion mappings.
//
// Mappings of distinct objects are still one per object when each is written
// (5,000 `y <- x; y[1] <- 0` make 5,000 private copies of a page). Their
// number is bounded the way R bounds file descriptors: when many mappings
// are live, the next new one first runs the garbage collector, which frees
// those of objects that are gone (collect_if_many_mappings()); a mapping
// the kernel refuses for want of address space is tried once more after a
// collection (view_on_found_node(), view.cpp).
//
// A mapping whose last object is gone stays mapped, idle, for the next use
// of its region in this process (the page tables stay filled, so reading
// the data again costs no page faults). At most kIdleMappings are kept, only
// of regions that still exist under their name, never with pages written
// here, never in the creating process (whose last object removes the
// region); one is dropped at the second garbage collection after it went
// idle, or as soon as its region is found removed.
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/store.h"

namespace shmr::glue {

struct RegionGroup;

class Mapping {
 public:
  explicit Mapping(std::shared_ptr<MappedRegion> region);
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  MappedRegion& region() const noexcept { return *region_; }
  const RegionReader& reader() const noexcept { return region_->reader(); }
  bool is_closed() const noexcept { return region_->is_closed(); }

  // A detached mapping reads a region whose name is gone (it was handed to
  // this process alone): its views cannot travel by name, so they serialize
  // their data.
  bool is_detached() const noexcept { return detached_; }
  void detach() noexcept;

  // Whether its views may travel by their region's name: not when it is
  // detached, nor when the name now leads to another region (removed, then
  // taken again), whose data a receiver would map instead of theirs.
  bool name_still_leads_here() const noexcept;

  // Whether its views may be serialized by their region's name: as above,
  // and the name must still be there (its creator may have exited, or
  // prune_shared() removed it): a receiver could open nothing by it.
  bool name_opens_here() const noexcept;

  void add_view(uint64_t node) { ++live_views_[node]; }
  // `data` and `size`: the bytes the view read (empty for a string view),
  // checked for pages written through it.
  void remove_view(uint64_t node, const void* data, uint64_t size) noexcept;

  // R was handed a data pointer into this mapping (read-only ones count:
  // Rcpp writes through them): its pages may have been written. Until then
  // none can have been, and no page check is needed;
  // a view checked since the last one was handed out needs none either.
  void note_writable_pointer() noexcept { ++writable_pointers_; }
  bool writable_pointer_given() const noexcept { return writable_pointers_ != 0; }
  uint64_t writable_pointers() const noexcept { return writable_pointers_; }

  // True when a new view of the fixed-width node `node` must not read this
  // mapping (the rule above).
  bool refuses_new_view_of(uint64_t node) const;

  // Keeps `others` (and so their regions, in the process that created them)
  // as long as this mapping: the regions a new region's serialized nodes
  // name (EncodedObject::named_mappings).
  void hold(std::vector<std::shared_ptr<Mapping>> others) { held_ = std::move(others); }

 private:
  friend class MappingRegistry;
  std::shared_ptr<MappedRegion> region_;
  std::unordered_map<uint64_t, uint32_t> live_views_;  // node -> views (slices count too)
  std::unordered_set<uint64_t> written_nodes_;         // their views wrote pages, and are gone
  std::shared_ptr<RegionGroup> group_;
  bool detached_ = false;
  uint64_t writable_pointers_ = 0;
  std::vector<std::shared_ptr<Mapping>> held_;
};

// A mapping of the region now called `name` for a new object (map_shared()):
// one of the same file that no object reads (idle, say), else a new one.
// Throws NotFound, Corrupt; MappingLimitReached when a new mapping of a file
// this process maps already would be needed past the limit (below).
std::shared_ptr<Mapping> open_mapping(const std::string& name);

// A new mapping of the region now called `name`, never one this process had
// (for a caller that has just claimed the region: the claim goes with
// mappings made from now on). Throws like open_mapping().
std::shared_ptr<Mapping> open_new_mapping(const std::string& name);

// A mapping of the region now called `name` for objects unserialized one by
// one (the columns of a data frame), which share it: any this process has of
// the same file, else a new one. Pass it to mapping_for_view() for each
// view. Throws like open_mapping().
std::shared_ptr<Mapping> mapping_for_unserialize(const std::string& name);

// mapping_for_unserialize(), then mapping_for_view() of a fixed-width node.
std::shared_ptr<Mapping> mapping_for_node(const std::string& name, uint64_t node);

// Thrown when a new mapping is needed for another object of a file this
// process maps already, and half the mappings the kernel allows a process
// are live (50,000 results unserialized one by one that each carry the same
// column): that object copies its data instead.
class MappingLimitReached : public Error {
 public:
  using Error::Error;
};

// `preferred` when a new view of `node` may read it, else another mapping of
// the same file (reused or new). `fixed_width`: the node is a logical,
// integer, double, complex or raw vector. Throws NotFound when a new mapping
// is needed and the file is no longer under its name, MappingLimitReached
// when there are too many.
std::shared_ptr<Mapping> mapping_for_view(const std::shared_ptr<Mapping>& preferred, uint64_t node,
                                          bool fixed_width);

// Another mapping of the very file `mapped` maps, never of a newer region
// that took its name: one free for a new view of `node` (reused or new), or
// with `fresh` always a new one. Throws NotFound when a new mapping is
// needed and the file is no longer under its name.
std::shared_ptr<Mapping> other_mapping_of_file(const std::shared_ptr<Mapping>& mapped, uint64_t node,
                                               bool fresh);

// True when the region holds a shared_buffer() (its header's class).
bool is_buffer_region(const RegionReader& reader);

// Makes a mapping made elsewhere (share(), buffers) findable for reuse.
// Idempotent; O(1).
void remember_mapping(const std::shared_ptr<Mapping>& mapping);

// Runs the garbage collector when many mappings are live, before another is
// made. R context: call where an allocation could happen, with no C++
// object alive in the calling frames that an R error would skip.
void collect_if_many_mappings();

// Before a region is made and mapped (share(), buffers), after
// collect_if_many_mappings(): throws when this process has as many mappings
// as it may have (an eighth of what the kernel allows stays for R).
void check_room_for_new_mapping();

// Lets go of idle mappings of `name` (it was just removed).
void drop_idle_mappings(const std::string& name) noexcept;

// Arms the check that drops idle mappings at garbage collections. R context.
void watch_idle_mappings();

// Counts for tests and diagnostics.
struct MappingStats {
  uint64_t live = 0;        // Mapping objects alive
  uint64_t groups = 0;      // files with a group in the registry
  uint64_t idle = 0;        // idle mappings kept
  uint64_t examined = 0;    // registry entries looked at, since the start
  uint64_t collections = 0; // garbage collections run to bound mappings
};
MappingStats mapping_stats();

// The directory regions live in for the shm backing.
std::string shm_directory();

}  // namespace shmr::glue
