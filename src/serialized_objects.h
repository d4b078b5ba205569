// The objects unserialized from a region's Serialized nodes, one table per
// decoded root (one share(), map_shared() or unserialize() result), shared
// by every list view made from it: the root, the lists inside it, and the
// copies R makes of any of them. A node is unserialized once per table, so
// an environment held in several places comes back as one environment, as
// it does from an ordinary list (and from one serialize() stream), however
// lazily and through whichever view its places are read. Two results of
// the same region (two map_shared() calls) have two tables, as two
// unserialize() calls of one stream give two environments.
//
// The table is an R external pointer: its address is a C++ map from node
// index to a position in the list of objects it protects (its protected
// value), freed by its finalizer. List views hold it in the protected value
// of their own external pointer, so the garbage collector sees every object
// it keeps (an environment that refers back to the list is collected with
// it, as in an ordinary list).
#pragma once

#include "r_api.h"

#include <cstdint>

namespace shmr::glue {

// A new, empty table. May raise an R error (allocation): call only inside
// cpp11::unwind_protect.
SEXP new_serialized_objects();

// The object kept for `node`, or nullptr (also for a `table` that is
// R_NilValue). Never raises.
SEXP serialized_object(SEXP table, uint64_t node) noexcept;

// Keeps `value` for `node` (a node kept already keeps its first object).
// C++: throws on failure (R's allocation errors come back as exceptions);
// call outside unwind_protect. `value` must be protected by the caller.
void keep_serialized_object(SEXP table, uint64_t node, SEXP value);

}  // namespace shmr::glue
