#include "decoded_check.h"

#include <cpp11/protect.hpp>
#include <cpp11/sexp.hpp>

#include <cstring>
#include <utility>
#include <vector>

#include "attributes.h"
#include "decode.h"
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

// True when `value` is the whole view of node `stored` of `mapping`'s file,
// written nowhere by this process (a name may have been taken again by
// another file: an inode of 0 tells nothing).
bool is_view_of(SEXP value, const Mapping& mapping, uint64_t stored) {
  ViewHandle* view = view_handle(value);
  if (view == nullptr || view->node.index() != stored || view->is_slice()) return false;
  const FileStamp& file = mapping.region().stamp();
  if (view->mapping.get() != &mapping &&
      (file.inode == 0 || !view->mapping->region().stamp().same_file(file)))
    return false;
  return !view_holds_own_writes(*view);
}

// True when x has the attributes `node` holds, by name, each value the
// view of its stored node or one `same_value(value, stored)` accepts. A
// buffer gets its class in the process that made it; a pairlist keeps its
// names as tags, not as an attribute; an object stored serialized holds
// its attributes in its stream.
template <typename SameValue>
bool attributes_match(SEXP x, const Mapping& mapping, const NodeView& node, SameValue&& same_value) {
  if (is_buffer_region(mapping.reader()) || !Rf_isVector(x) ||
      node.kind() == NodeKind::Serialized || node.kind() == NodeKind::StreamElement)
    return true;
  std::vector<std::pair<SEXP, SEXP>> own;
  for_each_attribute(x, [&](SEXP tag, SEXP value) { own.emplace_back(tag, value); });
  if (own.size() != node.attribute_count()) return false;
  for (const auto& [tag, value] : own) {
    const char* name = CHAR(PRINTNAME(tag));
    uint32_t a = 0;
    while (a < node.attribute_count() && node.attribute_name(a) != name) ++a;
    if (a == node.attribute_count()) return false;
    const uint64_t stored = node.attribute_value(a);
    if (!is_view_of(value, mapping, stored) && !same_value(value, stored)) return false;
  }
  return true;
}

// True when `value`, an attribute value, holds what the node `stored`
// holds, compared without calling R (so that it can run where an R error
// could not be caught): bytes, lists element by element, and attributes in
// turn, on a stack of its own. An ALTREP object other than the node's own
// view is taken as changed; an object stored serialized, as an element
// would be by the caller (`serialized`).
bool holds_stored_value(SEXP value, const Mapping& mapping, uint64_t stored, SerializedValues serialized) {
  std::vector<std::pair<SEXP, uint64_t>> pending{{value, stored}};
  auto queue = [&](SEXP object, uint64_t index) {
    pending.emplace_back(object, index);
    return true;
  };
  while (!pending.empty()) {
    auto [object, index] = pending.back();
    pending.pop_back();
    if (is_view_of(object, mapping, index)) continue;
    NodeView node = mapping.reader().node(index);
    switch (node.kind()) {
      case NodeKind::Null:
        if (object != R_NilValue) return false;
        continue;
      case NodeKind::Serialized:
      case NodeKind::StreamElement:
        if (serialized == SerializedValues::EnvironmentsMayHaveChanged &&
            (TYPEOF(object) == ENVSXP || TYPEOF(object) == CLOSXP))
          return false;
        continue;
      case NodeKind::List: {
        if (ALTREP(object)) return false;
        uint64_t position = 0;
        if (TYPEOF(object) == LISTSXP) {
          for (SEXP cell = object; cell != R_NilValue && position < node.length(); cell = CDR(cell))
            queue(CAR(cell), node.child(position++));
          if (position != node.length() || Rf_length(object) != static_cast<int>(position))
            return false;
        } else if (TYPEOF(object) == VECSXP && static_cast<uint64_t>(XLENGTH(object)) == node.length()) {
          for (R_xlen_t i = 0; i < XLENGTH(object); ++i) queue(VECTOR_ELT(object, i), node.child(position++));
        } else {
          return false;
        }
        break;
      }
      default:
        if (!same_bytes(object, node)) return false;
    }
    if (!attributes_match(object, mapping, node, queue)) return false;
  }
  return true;
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
    // The list's own attributes travel with it; an element's are read from
    // the region by whoever decodes it there.
    if (!decoded_attributes_unchanged(element, *mapping, child,
                                      SerializedValues::EnvironmentsMayHaveChanged))
      return false;
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

bool decoded_attributes_unchanged(SEXP element, const Mapping& mapping, const NodeView& node,
                                  SerializedValues serialized) {
  return attributes_match(element, mapping, node, [&](SEXP value, uint64_t stored) {
    return holds_stored_value(value, mapping, stored, serialized);
  });
}

bool attributes_as_stored(SEXP x, const std::shared_ptr<Mapping>& mapping, uint64_t node) {
  return attributes_match(x, *mapping, mapping->reader().node(node), [&](SEXP value, uint64_t stored) {
    cpp11::sexp decoded(decode_object(mapping, stored));
    // identical()'s defaults; a shared string vector may raise when read.
    return static_cast<bool>(cpp11::safe[R_compute_identical](value, decoded, 16));
  });
}

bool list_view_unchanged(SEXP x) noexcept {
  ListHandle* handle = list_view_handle(x);
  return handle != nullptr && still_reads_as_node(x, *handle->mapping, handle->node);
}

}  // namespace shmr::glue
