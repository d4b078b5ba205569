// Conversions between the region format's types and R's.
#pragma once

#include "core/format.h"
#include "r_api.h"

namespace shmr::glue {

inline cetype_t r_encoding(format::StringEncoding encoding) {
  switch (encoding) {
    case format::StringEncoding::Utf8:
      return CE_UTF8;
    case format::StringEncoding::Latin1:
      return CE_LATIN1;
    case format::StringEncoding::Bytes:
      return CE_BYTES;
    default:
      return CE_NATIVE;
  }
}

inline SEXPTYPE r_type(format::NodeKind kind) {
  switch (kind) {
    case format::NodeKind::Logical:
      return LGLSXP;
    case format::NodeKind::Integer:
      return INTSXP;
    case format::NodeKind::Double:
      return REALSXP;
    case format::NodeKind::Complex:
      return CPLXSXP;
    case format::NodeKind::Raw:
      return RAWSXP;
    case format::NodeKind::String:
      return STRSXP;
    default:
      return VECSXP;
  }
}

// The data of an ordinary (non-ALTREP) logical, integer, double, complex or
// raw vector, through the typed accessors of the API.
inline void* writable_data(SEXP x) {
  switch (TYPEOF(x)) {
    case LGLSXP:
      return LOGICAL(x);
    case INTSXP:
      return INTEGER(x);
    case REALSXP:
      return REAL(x);
    case CPLXSXP:
      return COMPLEX(x);
    default:
      return RAW(x);
  }
}

}  // namespace shmr::glue
