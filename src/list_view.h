// A shared list as one ALTREP object, on R >= 4.3 (the first R with
// ALTLIST). Its elements are decoded from the region when first read and
// kept; it serializes as its region's name and node, like a vector view, so
// a data frame travels as one name however many columns it has, and comes
// back shared in any process. Its handle holds the mapping: the region lives
// as long as the list or any part of it, like a vector's.
//
// On older R a shared list is an ordinary list (see list_registry.h).
#pragma once

#include "r_api.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "core/reader.h"
#include "mapping.h"

#if R_VERSION >= R_Version(4, 3, 0)
#define SHMR_HAVE_ALTLIST 1
#else
#define SHMR_HAVE_ALTLIST 0
#endif

namespace shmr::glue {

struct ListHandle {
  std::shared_ptr<Mapping> mapping;
  NodeView node;
  // Set by the first change made to the list in this process: from then on
  // it is a private list (it holds every element itself, is not shared, and
  // serializes by value). The region never changes.
  bool written = false;
  // Node -> a position whose element was decoded from it, kept once one
  // node may stand in several places (altrep_list.cpp, earlier_element()).
  std::unique_ptr<std::unordered_map<uint64_t, R_xlen_t>> positions;
  // Whether the list holds an object of its region's stream that R keeps by
  // reference, once told (altrep_list.cpp, holds_stream_references()): its
  // nodes never change, nor does the stream once its root has read it.
  std::optional<bool> stream_references;
};

// True when this build of shmr has the ALTREP list class.
constexpr bool have_list_views() { return SHMR_HAVE_ALTLIST != 0; }

// Registers the class (nothing without ALTLIST).
void init_list_view_class(DllInfo* dll);

// A list view of the List node `node`, without attributes, that decodes
// serialized nodes through `table` (the table of its decoded root,
// serialized_objects.h; it keeps it alive). May raise an R error
// (allocation): call only inside cpp11::unwind_protect.
SEXP make_list_view(const std::shared_ptr<Mapping>& mapping, const NodeView& node, SEXP table);

// The handle of a list view, or nullptr for anything else (never throws).
ListHandle* list_view_handle(SEXP x);

// Whether `x` is a shared list unserialized while its region could not be
// had (make_unavailable_object()).
bool is_unavailable_list(SEXP x);

// The elements the list view `x` has decoded so far: a list of the node's
// length in which NULL means "not decoded yet", or R_NilValue when none was.
SEXP list_view_decoded_elements(SEXP x);

}  // namespace shmr::glue
