// fetch(): an ordinary in-memory deep copy with no ALTREP left anywhere.
#pragma once

#include "r_api.h"

namespace shmr::glue {

// R-only code (may raise R errors): call inside cpp11::unwind_protect.
SEXP fetch_copy(SEXP x);

}  // namespace shmr::glue
