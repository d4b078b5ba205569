// One decoded use of a region in this process. Every ALTREP view made by one
// decode points at the same Mapping; a node has at most one live view per
// Mapping, so two R objects never share the same private pages.
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/store.h"

namespace shmr::glue {

class Mapping {
 public:
  explicit Mapping(std::shared_ptr<MappedRegion> region) : region_(std::move(region)) {}
  ~Mapping();

  MappedRegion& region() const noexcept { return *region_; }
  const RegionReader& reader() const noexcept { return region_->reader(); }
  bool is_closed() const noexcept { return region_->is_closed(); }

  // A detached mapping reads a region whose name is gone (it was handed to
  // this process alone): its views cannot travel by name, so they serialize
  // their data.
  bool is_detached() const noexcept { return detached_; }
  void detach() noexcept { detached_ = true; }

  bool has_live_view(uint64_t node) const { return live_views_.count(node) != 0; }
  void add_view(uint64_t node) { ++live_views_[node]; }
  void remove_view(uint64_t node) {
    auto found = live_views_.find(node);
    if (found != live_views_.end() && --found->second == 0) live_views_.erase(found);
  }

 private:
  std::shared_ptr<MappedRegion> region_;
  std::unordered_map<uint64_t, uint32_t> live_views_;  // node -> views (slices count too)
  bool detached_ = false;
};

// A mapping of `name` on which `node` has no live view: a cached one when
// possible (so unserializing many columns maps the region once), else new.
std::shared_ptr<Mapping> mapping_for_node(const std::string& name, uint64_t node);

// A brand-new mapping (for map_shared()).
std::shared_ptr<Mapping> open_mapping(const std::string& name);

// Remembers a mapping so later unserialize() calls can reuse it.
void remember_mapping(const std::shared_ptr<Mapping>& mapping);

// The directory regions live in for the shm backing.
std::string shm_directory();

}  // namespace shmr::glue
