// Lists decoded from a region are ordinary R lists (R < 4.3 has no ALTLIST),
// so they carry no mark of their own. This registry remembers each one by
// address together with the element objects it was built with; a list is
// recognised only while it still holds exactly those elements.
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>

namespace shmr::glue {

class Mapping;

struct ListOrigin {
  std::shared_ptr<Mapping> mapping;
  uint64_t node;
};

// Records `list` (a VECSXP just decoded from `node`). When the list has no
// view among its descendants nothing else keeps the mapping alive, so
// `anchor` asks the registry to hold it until close() or exit.
void remember_list(SEXP list, const std::shared_ptr<Mapping>& mapping, uint64_t node, bool anchor);

// The origin of `x` when it is an unchanged decoded list; mapping is null otherwise.
ListOrigin find_list(SEXP x);

// Called when a mapping dies or is closed.
void forget_lists_of(const Mapping* mapping);

}  // namespace shmr::glue
