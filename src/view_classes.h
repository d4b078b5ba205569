// Registry of the ALTREP view classes, so generic code can map a node kind
// to its class and recognise any shmr view.
#pragma once

#include "r_api.h"

#include "core/format.h"

namespace shmr::glue {

void register_view_class(format::NodeKind kind, R_altrep_class_t cls);
const R_altrep_class_t* view_class_for(format::NodeKind kind);
// The class of `x` when it is a shmr view, else nullptr.
const R_altrep_class_t* view_class_of(SEXP x);
// The view class whose class object is `cls` (what an Unserialize method
// receives), else nullptr.
const R_altrep_class_t* view_class_from_object(SEXP cls);

}  // namespace shmr::glue
