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

std::unordered_map<SEXP, Entry>& registry() {
  static std::unordered_map<SEXP, Entry> entries;
  return entries;
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
  registry()[list] = std::move(entry);
}

ListOrigin find_list(SEXP x) {
  if (TYPEOF(x) != VECSXP) return {};
  auto found = registry().find(x);
  if (found == registry().end()) return {};
  const Entry& entry = found->second;
  std::shared_ptr<Mapping> mapping = entry.mapping.lock();
  if (!mapping || mapping->is_closed()) return {};
  if (static_cast<size_t>(XLENGTH(x)) != entry.elements.size()) return {};
  for (size_t i = 0; i < entry.elements.size(); ++i)
    if (VECTOR_ELT(x, static_cast<R_xlen_t>(i)) != entry.elements[i]) return {};
  return {mapping, entry.node};
}

void forget_lists_of(const Mapping* mapping) {
  auto& entries = registry();
  // Anchors are dropped only after the loop: dropping the last one destroys
  // the mapping, whose destructor calls back here.
  std::vector<std::shared_ptr<Mapping>> anchors;
  for (auto it = entries.begin(); it != entries.end();) {
    if (it->second.owner == mapping) {
      if (it->second.anchor) anchors.push_back(std::move(it->second.anchor));
      it = entries.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace shmr::glue
