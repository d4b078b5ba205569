// Walking an object's attributes without the non-API ATTRIB() on R >= 4.6,
// where R_mapAttrib is the supported way. Values are the stored ones (for
// example compact row names stay compact).
#pragma once

#include "r_api.h"

namespace shmr::glue {

// Calls visit(tag_symbol, value) for each attribute, in order. `visit` must
// not raise R errors.
template <typename Visit>
void for_each_attribute(SEXP x, Visit&& visit) {
#if R_VERSION >= R_Version(4, 6, 0)
  struct Closure {
    Visit* visit;
  } closure{&visit};
  R_mapAttrib(
      x,
      [](SEXP tag, SEXP value, void* data) -> SEXP {
        (*static_cast<Closure*>(data)->visit)(tag, value);
        return NULL;
      },
      &closure);
#else
  for (SEXP a = ATTRIB(x); a != R_NilValue; a = CDR(a)) visit(TAG(a), CAR(a));
#endif
}

}  // namespace shmr::glue
