// Passing regions between processes: a worker writes a result into a region
// it does not keep (handoff), and the caller takes over its ownership
// (adopt), so a large result crosses as a name and is removed with the
// caller's object.
#include <cpp11/sexp.hpp>

#include <string>

#include "api_support.h"
#include "core/ownership.h"
#include "core/store.h"
#include "decode.h"
#include "encode.h"
#include "r_api.h"

using namespace shmr;
using namespace shmr::glue;

extern "C" SEXP shmr_share_handoff(SEXP x, SEXP original_class, SEXP options) {
  BEGIN_CPP11
  return with_messages([&]() -> SEXP {
    EncodedObject encoded;
    describe_object(x, encoded);
    encoded.description.original_class = as_string(original_class);
    auto region = create_region(encoded.description, create_options(options));
    std::string name = region->name();
    // Unmap here and leave the region to whoever adopts it.
    region->close(Removal::Keep);
    return cpp11::as_sexp(name);
  });
  END_CPP11
}

extern "C" SEXP shmr_adopt(SEXP name) {
  BEGIN_CPP11
  return with_messages([&]() -> SEXP {
    std::string region = region_name_for(as_string(name));
    auto owner = claim_region(locate_region(shm_directory(), region), false);
    // A new mapping attaches the claim just made; from then on the mapping
    // keeps it alive.
    auto mapping = open_new_mapping(region);
    return decode_object(mapping, mapping->reader().root());
  });
  END_CPP11
}
