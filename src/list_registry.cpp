#include "list_registry.h"

#include <unordered_map>
#include <vector>

#include "mapping.h"

namespace shmr::glue {
namespace {

struct Entry {
  std::weak_ptr<Mapping> mapping;
  std::shared_ptr<Mapping> anchor;
  const Mapping* owner = nullptr;
  uint64_t node = 0;
  std::vector<SEXP> elements;  // compared by address only, never dereferenced
};

struct Registry {
  std::unordered_map<SEXP, Entry> by_list;
  // The lists each mapping registered, so a dying mapping forgets only its own.
  std::unordered_map<const Mapping*, std::vector<SEXP>> by_owner;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void remember_list(SEXP list, const std::shared_ptr<Mapping>& mapping, uint64_t node,
                   bool anchor) {
  Entry entry;
  entry.mapping = mapping;
  entry.owner = mapping.get();
  if (anchor) entry.anchor = mapping;
  entry.node = node;
  R_xlen_t n = XLENGTH(list);
  entry.elements.reserve(static_cast<size_t>(n));
  for (R_xlen_t i = 0; i < n; ++i) entry.elements.push_back(VECTOR_ELT(list, i));
  Registry& r = registry();
  r.by_owner[mapping.get()].push_back(list);
  // An address reused after the previous list there was collected replaces
  // the stale entry; forget_lists_of() checks the owner before erasing.
  r.by_list[list] = std::move(entry);
}

ListOrigin find_list(SEXP x) {
  if (TYPEOF(x) != VECSXP) return {};
  auto found = registry().by_list.find(x);
  if (found == registry().by_list.end()) return {};
  const Entry& entry = found->second;
  std::shared_ptr<Mapping> mapping = entry.mapping.lock();
  if (!mapping || mapping->is_closed()) return {};
  if (static_cast<size_t>(XLENGTH(x)) != entry.elements.size()) return {};
  for (size_t i = 0; i < entry.elements.size(); ++i)
    if (VECTOR_ELT(x, static_cast<R_xlen_t>(i)) != entry.elements[i]) return {};
  return {mapping, entry.node};
}

void forget_lists_of(const Mapping* mapping) {
  Registry& r = registry();
  auto owned = r.by_owner.find(mapping);
  if (owned == r.by_owner.end()) return;
  std::vector<SEXP> lists = std::move(owned->second);
  r.by_owner.erase(owned);
  // Anchors are dropped only after the loop: dropping the last one destroys
  // the mapping, whose destructor calls back here.
  std::vector<std::shared_ptr<Mapping>> anchors;
  for (SEXP list : lists) {
    auto found = r.by_list.find(list);
    if (found == r.by_list.end() || found->second.owner != mapping) continue;
    if (found->second.anchor) anchors.push_back(std::move(found->second.anchor));
    r.by_list.erase(found);
  }
}

}  // namespace shmr::glue
