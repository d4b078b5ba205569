// Whether an object decoded from a region still holds the values of the node
// it was decoded from. R itself never changes such an object in place: it
// copies an element of a list before changing it. C code can, through a data
// pointer R handed out (data.table's set(), a package's .Call), and then the
// object no longer reads as its node: it must travel by value and has no
// name of its own.
#pragma once

#include "r_api.h"

#include "core/reader.h"

namespace shmr::glue {

// True when `element`, an ordinary (not ALTREP) vector, has the type, the
// length and the values of the fixed-width or String node `node`.
bool same_bytes(SEXP element, const NodeView& node);

// True when the list view `x` still reads as its node: it was not changed
// (Set_elt), and each element it has decoded still holds its node's values:
// the view of that node, written nowhere by this process; a list of such
// elements; or a copy with the node's bytes. An unserialized element (a
// function, an environment) cannot be compared and counts as unchanged.
// Attributes are not compared. Never raises an R error; answers false when
// it cannot tell.
bool list_view_unchanged(SEXP x) noexcept;

}  // namespace shmr::glue
