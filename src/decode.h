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
// (allocation, unserialize) come back as exceptions too.
SEXP decode_object(const std::shared_ptr<Mapping>& mapping, uint64_t node);

// Element `position` (0-based) of the list view `list`, for its Elt method.
// Its vectors are views on the list's mapping, or on another mapping of the
// same region when one of them has a view there already (two objects never
// share private pages). Throws like decode_object().
SEXP decode_list_element(const ListHandle& list, uint64_t position);

}  // namespace shmr::glue
