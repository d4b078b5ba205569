#include "list_registry.h"

#include <algorithm>
#include <string>
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
  // For a list of a writable share: its key in Registry::by_first_view.
  bool indexed = false;
  size_t first_view_key = 0;
};

struct Registry {
  std::unordered_map<SEXP, Entry> by_list;
  // The lists each mapping registered, so a dying mapping forgets only its own.
  std::unordered_map<const Mapping*, std::vector<SEXP>> by_owner;
  // The lists of writable shares, by their first view's region and node
  // (first_view_key()): R's copies of them are found from there.
  std::unordered_multimap<size_t, SEXP> by_first_view;
};

// How many elements a list's first view is looked for in.
constexpr R_xlen_t kFirstViewWithin = 16;

size_t first_view_key(const std::string& region, uint64_t node) {
  return std::hash<std::string>()(region) * 31 + std::hash<uint64_t>()(node);
}

const Entry* live_entry(SEXP x, std::shared_ptr<Mapping>& mapping);
ListOrigin adopted_list(SEXP x, int depth);

// The origin of the ordinary list `element` inside a list being adopted:
// as find_list() finds a registered one; R's copy of one only `depth`
// levels further down (each level looks at up to kFirstViewWithin elements).
ListOrigin inner_origin(SEXP element, int depth) {
  std::shared_ptr<Mapping> mapping;
  if (live_entry(element, mapping) != nullptr) return find_list(element);
  return depth > 0 ? adopted_list(element, depth - 1) : ListOrigin{};
}

// The region and node of the first part of a writable share among the
// first elements of `list` (a view, or a shared list inside it), with its
// position; false when there is none. A list inside is found by
// inner_origin(), `depth` levels down; with a negative `depth`, only
// registered ones.
bool first_writable_part(SEXP list, int depth, R_xlen_t& position, std::string& region,
                         uint64_t& node) {
  const R_xlen_t n = std::min<R_xlen_t>(XLENGTH(list), kFirstViewWithin);
  for (position = 0; position < n; ++position) {
    SEXP element = VECTOR_ELT(list, position);
    std::shared_ptr<Mapping> mapping;
    if (const ViewHandle* view = view_handle(element)) {
      if (view->is_slice()) continue;
      mapping = view->mapping;
      node = view->node.index();
    } else if (TYPEOF(element) == VECSXP && !ALTREP(element)) {
      if (depth >= 0) {
        ListOrigin inner = inner_origin(element, depth);
        mapping = inner.mapping;
        node = inner.node;
      } else if (const Entry* inner = live_entry(element, mapping)) {
        node = inner->node.index();
      }
    }
    if (mapping != nullptr && mapping->region().access() == Access::SharedWritable) {
      region = mapping->region().name();
      return true;
    }
  }
  return false;
}

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

// Removes `list`'s entry `entry` from by_first_view.
void unindex(Registry& r, SEXP list, const Entry& entry) noexcept {
  if (!entry.indexed) return;
  auto range = r.by_first_view.equal_range(entry.first_view_key);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == list) {
      r.by_first_view.erase(it);
      return;
    }
}

// How many levels down lists inside R's copy of a list are looked at as
// R's copies too (`l[[c(1, 1, 2)]] <- v` copies two): a plain list of
// lists that is no share costs up to kFirstViewWithin^(depth + 1) looks.
constexpr int kAdoptedDepth = 2;

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
  // An attribute C code set in place on the element would not come back
  // from the region's name.
  if (!decoded_attributes_unchanged(element, mapping, child, SerializedValues::Unchanged))
    return false;
  switch (child.kind()) {
    case NodeKind::Null:
      return element == R_NilValue;
    case NodeKind::Serialized:
    case NodeKind::StreamElement:
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

// True when `element`, at `position` of a list R made of the registered
// list `entry` describes (a writable share's data frame after `[<-` or `$<-`
// changed a column: R's own copy of the list), reads what the decoded
// element read: that element itself, or a view of the same node that
// writes through to it (the copy a change settled as the share's value, or
// R's copy of it not yet written, such as `[<-.Date`'s class<- makes).
bool reads_as_decoded(const Entry& entry, const Mapping& mapping, uint64_t position, SEXP element,
                      int depth) {
  if (element == entry.elements[position]) {
    std::vector<SEXP> nested;
    if (!holds_decoded(entry, mapping, position, element, nested)) return false;
    for (SEXP list : nested)
      if (find_list(list).mapping == nullptr) return false;
    return true;
  }
  const uint64_t node = entry.node.child(position);
  if (const ViewHandle* view = view_handle(element))
    return view->node.index() == node && !view->is_slice() && !view->holds_private_values() &&
           view->mapping->region().name() == mapping.region().name();
  if (is_ordinary_list(element) && TYPEOF(element) == VECSXP) {
    ListOrigin inner = inner_origin(element, depth);
    return inner.mapping != nullptr && inner.node == node &&
           inner.mapping->region().name() == mapping.region().name();
  }
  return false;
}

// The origin of `x`, an ordinary list that is not registered (or no longer
// holds what it was decoded with: R's `$<-` on a plain list puts the
// element's copy in place), when it is R's copy of a registered list of a
// writable share, or that list itself, holding the same elements or views
// that write through to the same nodes.
ListOrigin adopted_list(SEXP x, int depth) {
  // Only lists of writable shares are adopted: without one (the usual
  // case), an ordinary list costs no search of its elements.
  if (TYPEOF(x) != VECSXP || ALTREP(x) || registry().by_first_view.empty()) return {};
  R_xlen_t at = 0;
  std::string region;
  uint64_t part = 0;
  if (!first_writable_part(x, depth, at, region, part)) return {};
  auto range = registry().by_first_view.equal_range(first_view_key(region, part));
  for (auto it = range.first; it != range.second; ++it) {
    std::shared_ptr<Mapping> mapping;
    const Entry* entry = live_entry(it->second, mapping);
    if (entry == nullptr || entry->elements.size() != static_cast<size_t>(XLENGTH(x)) ||
        mapping->region().name() != region || entry->node.child(static_cast<uint64_t>(at)) != part)
      continue;
    bool same = true;
    for (R_xlen_t i = 0; i < XLENGTH(x) && same; ++i)
      same = reads_as_decoded(*entry, *mapping, static_cast<uint64_t>(i), VECTOR_ELT(x, i), depth);
    if (same) return {mapping, entry->node.index()};
  }
  return {};
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
  if (TYPEOF(list) == VECSXP && mapping->region().access() == Access::SharedWritable) {
    R_xlen_t at = 0;
    std::string region;
    uint64_t part = 0;
    if (first_writable_part(list, -1, at, region, part)) {
      entry.indexed = true;
      entry.first_view_key = first_view_key(region, part);
      r.by_first_view.emplace(entry.first_view_key, list);
    }
  }
  auto stale = r.by_list.find(list);
  if (stale != r.by_list.end()) unindex(r, list, stale->second);
  r.by_owner[mapping.get()].push_back(list);
  // A stale entry (its list was collected; R reused the address) is
  // replaced; forget_lists_of() checks the owner before erasing.
  r.by_list[list] = std::move(entry);
}

ListOrigin find_list(SEXP x) {
  try {
    std::shared_ptr<Mapping> mapping;
    const Entry* root = live_entry(x, mapping);
    if (root == nullptr) return adopted_list(x, kAdoptedDepth);
    uint64_t node = root->node.index();
    std::vector<SEXP> pending{x};
    std::unordered_set<SEXP> checked;
    while (!pending.empty()) {
      SEXP list = pending.back();
      pending.pop_back();
      if (!checked.insert(list).second) continue;
      std::shared_ptr<Mapping> owner;
      const Entry* entry = live_entry(list, owner);
      if (entry == nullptr || owner != mapping) return adopted_list(x, kAdoptedDepth);
      bool intact = visit_elements(list, [&](size_t i, SEXP element) {
        return holds_decoded(*entry, *mapping, i, element, pending);
      });
      if (!intact) return adopted_list(x, kAdoptedDepth);
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
    if (found != r.by_list.end() && found->second.owner == mapping) {
      unindex(r, list, found->second);
      r.by_list.erase(found);
    }
  }
  r.by_owner.erase(owned);
}

}  // namespace shmr::glue
