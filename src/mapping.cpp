#include "mapping.h"

#include <unordered_map>

#include "list_registry.h"

namespace shmr::glue {
namespace {

std::unordered_map<std::string, std::weak_ptr<Mapping>>& mapping_cache() {
  static std::unordered_map<std::string, std::weak_ptr<Mapping>> cache;
  return cache;
}

}  // namespace

Mapping::~Mapping() { forget_lists_of(this); }

std::string shm_directory() { return default_shm_directory(); }

std::shared_ptr<Mapping> open_mapping(const std::string& name) {
  return std::make_shared<Mapping>(open_mapped_region(shm_directory(), name));
}

void remember_mapping(const std::shared_ptr<Mapping>& mapping) {
  auto& cache = mapping_cache();
  // Drop entries whose mappings are gone, so the cache stays small.
  for (auto it = cache.begin(); it != cache.end();) {
    it = it->second.expired() ? cache.erase(it) : std::next(it);
  }
  cache[mapping->region().name()] = mapping;
}

std::shared_ptr<Mapping> mapping_for_node(const std::string& name, uint64_t node) {
  auto& cache = mapping_cache();
  auto found = cache.find(name);
  if (found != cache.end()) {
    std::shared_ptr<Mapping> cached = found->second.lock();
    if (cached && !cached->is_closed() && !cached->has_live_view(node)) return cached;
  }
  std::shared_ptr<Mapping> fresh = open_mapping(name);
  remember_mapping(fresh);
  return fresh;
}

}  // namespace shmr::glue
