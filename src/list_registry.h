// On R without ALTLIST (before 4.3) a list decoded from a region is an
// ordinary R list, and on every R a pairlist is (there is no ALTREP
// pairlist; one is registered when it is the object decoded, whole or as
// a list view's element): it has no mark of its own, and R can tell nobody
// when it is collected (weak references and finalizers take only
// environments and external pointers). What can be observed are its views:
// each is an ALTREP object that holds the mapping and cannot be faked. So a
// list is a shared object only when it holds at least one view (directly,
// or through a nested shared list), and it is recognised only while it
// still holds exactly the elements it was decoded with, each checked
// against the region (the view of that node, the shared list of that node,
// or a copy with the node's bytes): a new list at an address R reused is
// never taken for it.
// The registry holds no mapping: the views do, so a region lives exactly as
// long as its views, and a list holding none keeps nothing alive.
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>

namespace shmr::glue {

class Mapping;

struct ListOrigin {
  std::shared_ptr<Mapping> mapping;
  uint64_t node = 0;
};

// Records `list`, an ordinary list or pairlist just decoded from the List
// node `node` of `mapping` that holds a view (or a list view). Throws only
// std::bad_alloc.
void remember_list(SEXP list, const std::shared_ptr<Mapping>& mapping, uint64_t node);

// The origin of `x` when it is a registered list whose region is open and
// which holds the elements it was decoded with; mapping is null otherwise.
// Never throws.
ListOrigin find_list(SEXP x);

// Keeps `mapping` until the process exits (a named region whose list holds
// no view, on R < 4.3).
void keep_until_exit(std::shared_ptr<Mapping> mapping);

// Forgets the lists of a mapping that is being destroyed. Destroys nothing
// but registry entries (which hold no mapping), so it is safe to call from
// the mapping's destructor.
void forget_lists_of(const Mapping* mapping) noexcept;

}  // namespace shmr::glue
