// Region -> R objects. Vectors become ALTREP views; lists become ordinary
// lists of views; serialized nodes are unserialized.
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>

#include "mapping.h"

namespace shmr::glue {

// Decodes `node` and everything it refers to. Throws Corrupt for inconsistent
// regions; R errors (allocation, unserialize) come back as exceptions too.
SEXP decode_object(const std::shared_ptr<Mapping>& mapping, uint64_t node);

}  // namespace shmr::glue
