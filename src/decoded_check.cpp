#include "decoded_check.h"

#include <cstring>
#include <vector>

#include "list_view.h"
#include "mapping.h"
#include "r_types.h"
#include "view.h"

namespace shmr::glue {
namespace {

using format::NodeKind;

// An element may read its node through another mapping of the same file
// (decode.cpp maps a file again when a node already has a view).
bool same_file(const Mapping& a, const Mapping& b) {
  return &a == &b || a.region().stamp().same_file(b.region().stamp());
}

// An object still to be compared with the node it was decoded from.
struct Pending {
  SEXP object;
  const Mapping* mapping;
  NodeView node;
};

// Compares `object` with `node`, of any kind but List.
bool leaf_matches(SEXP object, const Mapping& mapping, const NodeView& node) {
  switch (node.kind()) {
    case NodeKind::Null:
      return object == R_NilValue;
    case NodeKind::Serialized:
    case NodeKind::StreamElement:
      // An environment or a closure (whose environment it carries) may have
      // been changed in place since it was decoded, which nothing here can
      // see: it travels by value, as an ordinary list's element would.
      return TYPEOF(object) != ENVSXP && TYPEOF(object) != CLOSXP;
    default:
      if (ViewHandle* view = view_handle(object))
        return view->node.index() == node.index() && same_file(*view->mapping, mapping) &&
               !view->is_slice() && !view_holds_own_writes(*view);
      return same_bytes(object, node);
  }
}

// Compares `item` itself, its elements of other kinds at once, and queues
// those that are lists: lists may be nested far deeper than the C stack
// allows recursion (test-nesting.R), and a long list's other elements are
// not queued one by one.
bool matches_node(const Pending& item, std::vector<Pending>& pending) {
  const NodeView& node = item.node;
  if (node.kind() != NodeKind::List) return leaf_matches(item.object, *item.mapping, node);
  SEXP object = item.object;
  const Mapping* mapping = item.mapping;
  if (ListHandle* list = list_view_handle(object)) {
    if (list->written || list->node.index() != node.index() || !same_file(*list->mapping, *mapping))
      return false;
    // Only the elements decoded so far can have been written: the others
    // are still in the region.
    object = list_view_decoded_elements(object);
    if (object == R_NilValue) return true;
    mapping = list->mapping.get();
  } else if (ALTREP(object)) {
    return false;
  }
  const bool decoded_so_far = object != item.object;
  auto element_matches = [&](uint64_t position, SEXP element) {
    if (position >= node.length()) return false;
    if (decoded_so_far && element == R_NilValue) return true;
    NodeView child = mapping->reader().node(node.child(position));
    if (child.kind() != NodeKind::List) return leaf_matches(element, *mapping, child);
    pending.push_back(Pending{element, mapping, std::move(child)});
    return true;
  };
  uint64_t position = 0;
  if (TYPEOF(object) == LISTSXP) {
    for (SEXP cell = object; cell != R_NilValue; cell = CDR(cell))
      if (!element_matches(position++, CAR(cell))) return false;
  } else if (TYPEOF(object) == VECSXP) {
    for (R_xlen_t i = 0; i < XLENGTH(object); ++i)
      if (!element_matches(position++, VECTOR_ELT(object, i))) return false;
  } else {
    return false;
  }
  return position == node.length();
}

// True when `element`, decoded from `node` of `mapping`'s region (or from
// the same node through another mapping of its file), still holds that
// node's values (list_view_unchanged() says which).
bool still_reads_as_node(SEXP element, const Mapping& mapping, const NodeView& node) noexcept {
  try {
    std::vector<Pending> pending{Pending{element, &mapping, node}};
    while (!pending.empty()) {
      Pending item = pending.back();
      pending.pop_back();
      if (!matches_node(item, pending)) return false;
    }
    return true;
  } catch (...) {
    // A node the reader refuses, or no memory for the queue: the element
    // cannot be shown to be unchanged.
    return false;
  }
}

}  // namespace

bool same_bytes(SEXP element, const NodeView& node) {
  if (ALTREP(element) || TYPEOF(element) != r_type(node.kind()) ||
      static_cast<uint64_t>(XLENGTH(element)) != node.length())
    return false;
  if (node.kind() != NodeKind::String)
    return node.data_size() == 0 ||
           std::memcmp(DATAPTR_RO(element), node.data(), node.data_size()) == 0;
  for (uint64_t i = 0; i < node.length(); ++i) {
    SEXP ch = STRING_ELT(element, static_cast<R_xlen_t>(i));
    StringRef s = node.string_at(i);
    if (s.encoding == format::StringEncoding::Missing) {
      if (ch != NA_STRING) return false;
    } else if (ch == NA_STRING || static_cast<uint64_t>(LENGTH(ch)) != s.size ||
               (s.size > 0 && std::memcmp(CHAR(ch), s.data, s.size) != 0)) {
      return false;
    }
  }
  return true;
}

bool list_view_unchanged(SEXP x) noexcept {
  ListHandle* handle = list_view_handle(x);
  return handle != nullptr && still_reads_as_node(x, *handle->mapping, handle->node);
}

}  // namespace shmr::glue
