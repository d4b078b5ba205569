// Sub-object paths inside a region: from the root node along list elements
// ("[i]") and attributes ("@name"), as in FORMAT.md section "Names".
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "names.h"
#include "reader.h"

namespace shmr {

// The node that `steps` lead to from the root. Throws NotFound when a step
// does not exist (position past the end, missing attribute, not a list).
uint64_t resolve_object_path(const RegionReader& reader, const std::vector<names::PathStep>& steps);

// The shortest path from the root to `target` (elements preferred), or
// nullopt when the node is unreachable.
std::optional<std::vector<names::PathStep>> find_object_path(const RegionReader& reader,
                                                             uint64_t target);

}  // namespace shmr
