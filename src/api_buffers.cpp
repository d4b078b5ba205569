// Shared output buffers: a writable region holding one zero-filled vector
// with a dim attribute, and direct writes into it by linear index, outside
// R's copy-on-modify rules (which would otherwise give each writer a copy).
#include <cpp11/protect.hpp>
#include <cpp11/sexp.hpp>

#include <cmath>
#include <cstring>
#include <string>

#include "api_support.h"
#include "core/store.h"
#include "decode.h"
#include "r_api.h"
#include "view.h"

using namespace shmr;
using namespace shmr::glue;

namespace {

format::NodeKind kind_of(const std::string& type) {
  if (type == "double") return format::NodeKind::Double;
  if (type == "integer") return format::NodeKind::Integer;
  if (type == "logical") return format::NodeKind::Logical;
  if (type == "raw") return format::NodeKind::Raw;
  if (type == "complex") return format::NodeKind::Complex;
  throw Error(ErrorKind::InvalidArgument, "unknown buffer type '" + type + "'");
}

template <typename T>
void fill(void* data, uint64_t n, T value) {
  T* out = static_cast<T*>(data);
  for (uint64_t i = 0; i < n; ++i) out[i] = value;
}

bool is_zero(const void* value, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(value);
  for (size_t i = 0; i < size; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

// The shmr view under `x`: R sometimes hands a replacement function a
// wrapper object (an ALTREP whose data1 is the object it wraps, made when
// only attributes may change) instead of the view itself.
ViewHandle* underlying_view(SEXP x) {
  for (int depth = 0; depth < 4 && x != nullptr; ++depth) {
    if (ViewHandle* handle = view_handle(x)) return handle;
    if (!ALTREP(x)) return nullptr;
    x = R_altrep_data1(x);
  }
  return nullptr;
}

}  // namespace

// init: a length-1 vector of the buffer's type.
extern "C" SEXP shmr_buffer_create(SEXP type, SEXP dim, SEXP init, SEXP options) {
  BEGIN_CPP11
  // Read before any C++ object exists: the data of an ALTREP vector (1:2 is
  // one) comes from its class's code, which may raise.
  const int* dim_values = static_cast<const int*>(ALTREP(dim) ? cpp11::safe[DATAPTR_RO](dim)
                                                              : DATAPTR_RO(dim));
  const void* init_value = ALTREP(init) ? cpp11::safe[DATAPTR_RO](init) : DATAPTR_RO(init);
  return with_messages([&]() -> SEXP {
    format::NodeKind kind = kind_of(as_string(type));
    double total = 1;
    for (R_xlen_t i = 0; i < XLENGTH(dim); ++i) total *= dim_values[i];
    if (total < 0 || total > 4.5e15) throw Error(ErrorKind::InvalidArgument, "bad buffer size");
    RegionDescription description;
    NodeSpec dims;
    dims.kind = format::NodeKind::Integer;
    dims.length = static_cast<uint64_t>(XLENGTH(dim));
    dims.bytes = dim_values;
    description.nodes.push_back(dims);
    NodeSpec data;
    data.kind = kind;
    data.length = static_cast<uint64_t>(total);
    data.zero_filled = true;
    data.attributes.emplace_back("dim", 0);
    description.nodes.push_back(data);
    description.root = 1;
    description.original_class = "shmr_buffer";

    CreateOptions create = create_options(options);
    create.writable = true;
    auto mapping = std::make_shared<Mapping>(create_region(description, create));
    NodeView node = mapping->reader().node(1);
    void* out = const_cast<void*>(node.data());
    const uint64_t n = node.length();
    // Zero pages cost nothing; only a non-zero initial value is written.
    switch (kind) {
      case format::NodeKind::Double:
        if (!is_zero(init_value, sizeof(double))) fill(out, n, *static_cast<const double*>(init_value));
        break;
      case format::NodeKind::Integer:
      case format::NodeKind::Logical:
        if (!is_zero(init_value, sizeof(int))) fill(out, n, *static_cast<const int*>(init_value));
        break;
      case format::NodeKind::Raw:
        if (!is_zero(init_value, 1)) std::memset(out, *static_cast<const Rbyte*>(init_value), n);
        break;
      case format::NodeKind::Complex:
        if (!is_zero(init_value, sizeof(Rcomplex)))
          fill(out, n, *static_cast<const Rcomplex*>(init_value));
        break;
      default:
        break;
    }
    return decode_object(mapping, 1);
  });
  END_CPP11
}

// Writes `value` (recycled, already of the buffer's type) at the 1-based
// linear positions `index` of the buffer view `x`.
extern "C" SEXP shmr_buffer_write(SEXP x, SEXP index, SEXP value) {
  BEGIN_CPP11
  return with_messages([&]() -> SEXP {
    ViewHandle* handle = underlying_view(x);
    if (handle == nullptr) throw Error(ErrorKind::InvalidArgument, "not a shared buffer");
    if (handle->mapping->is_closed()) throw Error(ErrorKind::Closed, "the buffer was closed");
    if (!view_writes_through(*handle)) throw Error(ErrorKind::InvalidArgument, "not a shared buffer");
    if (TYPEOF(value) != TYPEOF(x)) throw Error(ErrorKind::InvalidArgument, "value has the wrong type");
    const R_xlen_t n = XLENGTH(index);
    const R_xlen_t m = XLENGTH(value);
    if (n > 0 && m == 0) throw Error(ErrorKind::InvalidArgument, "replacement has length zero");
    const double length = static_cast<double>(handle->node.length());
    const double* at = REAL(index);
    for (R_xlen_t k = 0; k < n; ++k)
      if (!(at[k] >= 1 && at[k] <= length && at[k] == std::floor(at[k])))
        throw Error(ErrorKind::InvalidArgument, "index out of range for the buffer");
    const size_t width = format::element_size(handle->node.kind());
    auto* out = static_cast<unsigned char*>(const_cast<void*>(handle->node.data()));
    // An ALTREP value runs its class's code, which may raise.
    const auto* in = static_cast<const unsigned char*>(
        ALTREP(value) ? cpp11::safe[DATAPTR_RO](value) : DATAPTR_RO(value));
    for (R_xlen_t k = 0; k < n; ++k)
      std::memcpy(out + (static_cast<uint64_t>(at[k]) - 1) * width, in + (k % m) * width, width);
    return x;
  });
  END_CPP11
}
