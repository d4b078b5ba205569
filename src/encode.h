// R object -> region description. Runs before any region exists, so a
// failure here leaves nothing behind.
#pragma once

#include "r_api.h"
#include <cpp11/sexp.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/string_dictionary.h"
#include "core/writer.h"

namespace shmr::glue {

class Mapping;

// The description plus everything its pointers point into: materialised
// copies of foreign ALTREP vectors, serialized blobs, string sources.
struct EncodedObject {
  RegionDescription description;
  std::vector<cpp11::sexp> keep_alive;
  std::vector<std::unique_ptr<StringSource>> string_sources;
  std::vector<std::unique_ptr<StringDictionary>> dictionaries;
  std::vector<std::unique_ptr<VectorSource>> vector_sources;
  // The mappings of the shared objects that serialized nodes name (a
  // closure's captured shared vector): the new region must keep them, since
  // a shared list decodes such a node only when it is first read, maybe
  // after every other reference to them is gone (Mapping::hold()).
  std::vector<std::shared_ptr<Mapping>> named_mappings;
};

// Describes `x`. Objects that are not vectors, lists or NULL (functions,
// environments, language, S4, ...) become serialized nodes. The same SEXP
// reached twice becomes one node, except, for a `writable` region, a data
// vector or list reached twice through list elements: each place gets its
// own. Throws on failure.
void describe_object(SEXP x, EncodedObject& out, bool writable = false);

}  // namespace shmr::glue
