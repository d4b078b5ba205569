#include "list_registry.h"

#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "decoded_check.h"
#include "list_view.h"
#include "mapping.h"
#include "view.h"

namespace shmr::glue {
namespace {

using format::NodeKind;

struct Entry {
  std::weak_ptr<Mapping> mapping;
  const Mapping* owner = nullptr;
  NodeView node;  // read only while `mapping` can be locked
  // The elements as decoded, compared by address; each comparison is backed
  // by a check against the region (holds_decoded), since an element's
  // address can be reused once the list no longer holds it.
  std::vector<SEXP> elements;
};

struct Registry {
  std::unordered_map<SEXP, Entry> by_list;
  // The lists each mapping registered, so a dying mapping forgets only its own.
  std::unordered_map<const Mapping*, std::vector<SEXP>> by_owner;
};

// Never destroyed, so no static destructor runs after R has gone.
Registry& registry() {
  static auto* instance = new Registry();
  return *instance;
}

bool is_ordinary_list(SEXP x) {
  return (TYPEOF(x) == VECSXP || TYPEOF(x) == LISTSXP) && !ALTREP(x);
}

// Calls `visit(position, element)` for the elements of an ordinary list or
// pairlist in order, while it returns true; false when one returned false.
template <typename Visit>
bool visit_elements(SEXP list, Visit visit) {
  if (TYPEOF(list) == LISTSXP) {
    size_t position = 0;
    for (SEXP cell = list; cell != R_NilValue; cell = CDR(cell))
      if (!visit(position++, CAR(cell))) return false;
    return true;
  }
  for (R_xlen_t i = 0; i < XLENGTH(list); ++i)
    if (!visit(static_cast<size_t>(i), VECTOR_ELT(list, i))) return false;
  return true;
}

// The entry of `x` when its mapping lives and its region is open.
const Entry* live_entry(SEXP x, std::shared_ptr<Mapping>& mapping) {
  if (!is_ordinary_list(x)) return nullptr;
  auto found = registry().by_list.find(x);
  if (found == registry().by_list.end()) return nullptr;
  mapping = found->second.mapping.lock();
  if (!mapping || mapping.get() != found->second.owner || mapping->is_closed()) return nullptr;
  if (static_cast<size_t>(Rf_xlength(x)) != found->second.elements.size()) return nullptr;
  return &found->second;
}

// True when `element` is still what the decoder put at `position`: the
// same object and, so that a new object at a reused address is never taken
// for it, the view of that node, the shared list of that node (queued in
// `nested` for the same check), or a copy with the node's bytes.
bool holds_decoded(const Entry& entry, const Mapping& mapping, uint64_t position, SEXP element,
                   std::vector<SEXP>& nested) {
  if (element != entry.elements[position]) return false;
  NodeView child = mapping.reader().node(entry.node.child(position));
  switch (child.kind()) {
    case NodeKind::Null:
      return element == R_NilValue;
    case NodeKind::Serialized:
      return true;
    case NodeKind::List: {
      if (TYPEOF(element) == LISTSXP) return true;  // a nested pairlist is never registered
      if (ListHandle* view = list_view_handle(element))
        return view->mapping.get() == &mapping && view->node.index() == child.index() &&
               list_view_unchanged(element);
      std::shared_ptr<Mapping> owner;
      const Entry* inner = live_entry(element, owner);
      if (inner == nullptr) {
        // A nested list without views is an ordinary copy.
        return TYPEOF(element) == VECSXP && !ALTREP(element) &&
               static_cast<uint64_t>(XLENGTH(element)) == child.length() &&
               registry().by_list.count(element) == 0;
      }
      if (owner.get() != &mapping || inner->node.index() != child.index()) return false;
      nested.push_back(element);
      return true;
    }
    default:
      if (ViewHandle* view = view_handle(element))
        return view->mapping.get() == &mapping && view->node.index() == child.index() &&
               !view->is_slice() && !view_holds_own_writes(*view);
      return same_bytes(element, child);
  }
}

}  // namespace

void remember_list(SEXP list, const std::shared_ptr<Mapping>& mapping, uint64_t node) {
  Entry entry;
  entry.mapping = mapping;
  entry.owner = mapping.get();
  entry.node = mapping->reader().node(node);
  visit_elements(list, [&](size_t, SEXP element) {
    entry.elements.push_back(element);
    return true;
  });
  Registry& r = registry();
  r.by_owner[mapping.get()].push_back(list);
  // A stale entry (its list was collected; R reused the address) is
  // replaced; forget_lists_of() checks the owner before erasing.
  r.by_list[list] = std::move(entry);
}

ListOrigin find_list(SEXP x) {
  try {
    std::shared_ptr<Mapping> mapping;
    const Entry* root = live_entry(x, mapping);
    if (root == nullptr) return {};
    uint64_t node = root->node.index();
    std::vector<SEXP> pending{x};
    std::unordered_set<SEXP> checked;
    while (!pending.empty()) {
      SEXP list = pending.back();
      pending.pop_back();
      if (!checked.insert(list).second) continue;
      std::shared_ptr<Mapping> owner;
      const Entry* entry = live_entry(list, owner);
      if (entry == nullptr || owner != mapping) return {};
      bool intact = visit_elements(list, [&](size_t i, SEXP element) {
        return holds_decoded(*entry, *mapping, i, element, pending);
      });
      if (!intact) return {};
    }
    return {mapping, node};
  } catch (const std::exception&) {
    return {};
  }
}

void keep_until_exit(std::shared_ptr<Mapping> mapping) {
  static auto* kept = new std::vector<std::shared_ptr<Mapping>>();
  kept->push_back(std::move(mapping));
}

void forget_lists_of(const Mapping* mapping) noexcept {
  Registry& r = registry();
  auto owned = r.by_owner.find(mapping);
  if (owned == r.by_owner.end()) return;
  for (SEXP list : owned->second) {
    auto found = r.by_list.find(list);
    if (found != r.by_list.end() && found->second.owner == mapping) r.by_list.erase(found);
  }
  r.by_owner.erase(owned);
}

}  // namespace shmr::glue
