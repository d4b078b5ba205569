// Whether an object decoded from a region still holds the values of the node
// it was decoded from. R itself never changes such an object in place: it
// copies an element of a list before changing it. C code can, through a data
// pointer R handed out (data.table's set(), a package's .Call), and then the
// object no longer reads as its node: it must travel by value and has no
// name of its own.
#pragma once

#include "r_api.h"

#include <memory>

#include "core/reader.h"

namespace shmr::glue {

class Mapping;

// True when `element`, an ordinary (not ALTREP) vector, has the type, the
// length and the values of the fixed-width or String node `node`.
bool same_bytes(SEXP element, const NodeView& node);

// True when the list view `x` still reads as its node: it was not changed
// (Set_elt), and each element it has decoded still holds its node's values:
// the view of that node, written nowhere by this process; a list of such
// elements; or a copy with the node's bytes. An unserialized element (a
// function, an environment) cannot be compared and counts as unchanged.
// The elements' attributes are compared too (decoded_attributes_unchanged());
// the list's own travel with it. Never raises an R error; answers false when
// it cannot tell.
bool list_view_unchanged(SEXP x) noexcept;

// How an attribute value stored serialized is taken: an environment or a
// closure may have been changed in place since it was given out
// (leaf_matches(), R >= 4.3), or, as R 4.2's registry takes its elements
// (holds_decoded(): every element there is decoded at once), unchanged.
enum class SerializedValues { EnvironmentsMayHaveChanged, Unchanged };

// True when `element`, decoded from `node` of `mapping`'s region (a list's
// element), still has the attributes the node holds: C code can set one in
// place (data.table's setattr()), which the region's name would not give
// back. An attribute that is a view of its stored node compares by node; any
// other by its values, without calling R, so that a check that cannot let
// an R error through can make it. May throw (a node the reader refuses,
// std::bad_alloc); raises no R error.
bool decoded_attributes_unchanged(SEXP element, const Mapping& mapping, const NodeView& node,
                                  SerializedValues serialized);

// The same for a shared object itself (node `node` of `mapping`): an
// attribute that is no view of its node is decoded and compared as
// identical() would. Calls R through cpp11::safe: only from an entry point.
bool attributes_as_stored(SEXP x, const std::shared_ptr<Mapping>& mapping, uint64_t node);

}  // namespace shmr::glue
