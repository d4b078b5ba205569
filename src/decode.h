// Region -> R objects. Vectors become ALTREP views; lists become list views
// (R >= 4.3) or ordinary lists of views (older R); pairlists become
// pairlists again; serialized nodes are unserialized.
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>

#include "list_view.h"
#include "mapping.h"

namespace shmr::glue {

// Decodes `node` as an object of its own (what share(), map_shared() and
// unserialize() return). Throws Corrupt for inconsistent regions; R errors
// (allocation, unserialize) come back as exceptions too. `table` is the
// table of serialized objects (serialized_objects.h) of the root the object
// belongs to; R_NilValue makes the object a root of its own.
SEXP decode_object(const std::shared_ptr<Mapping>& mapping, uint64_t node, SEXP table = R_NilValue);

// The same as an ordinary object that holds copies of its data and keeps
// no reference to `mapping`: what map_shared() returns when no mapping may
// be made for it (MappingLimitReached), so that closing it closes nothing
// another object reads. A region written in place (a writable share, a
// buffer) is decoded by decode_object() all the same: a copy would keep its
// writes to itself, and its views never need a mapping of their own.
SEXP decode_copy(const std::shared_ptr<Mapping>& mapping, uint64_t node);

// Element `position` (0-based) of the list view `list`, for its Elt method.
// Its vectors are views on the list's mapping, or on another mapping of the
// same region when one of them has a view there already (two objects never
// share private pages). `table` is the list's table of serialized objects.
// Throws like decode_object().
SEXP decode_list_element(const ListHandle& list, uint64_t position, SEXP table);

}  // namespace shmr::glue
