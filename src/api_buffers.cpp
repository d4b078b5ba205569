// Shared output buffers: a writable region holding one vector (with a dim
// attribute for a matrix or array), and writes into it by subscripts,
// outside R's copy-on-modify rules (which would otherwise give each writer a
// copy). A write goes to the region whichever R object it comes through: the
// buffer, a copy R made of it, or one of R's wrappers around either.
#include <cpp11/protect.hpp>
#include <cpp11/sexp.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

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

// A buffer holds a reference to itself, so R never takes it for an
// unreferenced temporary and writes a result into it (x * 2 may reuse the
// memory of a temporary x): its memory changes only through `[<-`.
void pin(SEXP buffer) { R_set_altrep_data2(buffer, buffer); }

// A new buffer's class, and its pin (R code only: may raise).
SEXP mark_as_buffer(SEXP buffer) {
  Rf_setAttrib(buffer, R_ClassSymbol, Rf_mkString("shmr_buffer"));
  pin(buffer);
  return buffer;
}

// One subscript per dimension (or one over the whole vector): NULL for all
// positions, else 1-based positions (integer or double, validated here).
struct Subscript {
  SEXP positions = R_NilValue;
  uint64_t extent = 0;
  uint64_t count = 0;
  uint64_t stride = 1;

  uint64_t at(uint64_t k) const {  // 0-based position along this dimension
    if (positions == R_NilValue) return k;
    if (TYPEOF(positions) == INTSXP) return static_cast<uint64_t>(INTEGER_ELT(positions, k)) - 1;
    return static_cast<uint64_t>(std::floor(REAL_ELT(positions, k))) - 1;
  }
};

void check_positions(const Subscript& s) {
  const R_xlen_t n = XLENGTH(s.positions);
  const double extent = static_cast<double>(s.extent);
  if (TYPEOF(s.positions) == INTSXP) {
    for (R_xlen_t k = 0; k < n; ++k) {
      int p = INTEGER_ELT(s.positions, k);
      if (p == NA_INTEGER || p < 1 || static_cast<double>(p) > extent)
        throw Error(ErrorKind::InvalidArgument, "subscript out of bounds");
    }
  } else {
    for (R_xlen_t k = 0; k < n; ++k) {
      double p = REAL_ELT(s.positions, k);
      if (!(p >= 1 && std::floor(p) <= extent))
        throw Error(ErrorKind::InvalidArgument, "subscript out of bounds");
    }
  }
}

// Copies element (k mod m) of `in` for each of the n selected positions, in
// R's order (the first subscript varies fastest). Runs along a first
// subscript that selects everything are copied as blocks.
void write_selected(unsigned char* out, const unsigned char* in, uint64_t m, size_t width,
                    std::vector<Subscript>& subs) {
  const size_t dims = subs.size();
  std::vector<uint64_t> counter(dims, 0);
  uint64_t k = 0;  // index into the selection (for recycling)
  const bool whole_run = subs[0].positions == R_NilValue;
  const uint64_t run = subs[0].count;
  for (;;) {
    uint64_t base = 0;
    for (size_t d = 1; d < dims; ++d) base += subs[d].at(counter[d]) * subs[d].stride;
    if (whole_run && (k % m) + run <= m) {
      std::memcpy(out + base * width, in + (k % m) * width, run * width);
    } else if (whole_run && m == 1) {
      for (uint64_t i = 0; i < run; ++i) std::memcpy(out + (base + i) * width, in, width);
    } else {
      for (uint64_t i = 0; i < run; ++i)
        std::memcpy(out + (base + subs[0].at(i)) * width, in + ((k + i) % m) * width, width);
    }
    k += run;
    size_t d = 1;
    for (; d < dims; ++d) {
      if (++counter[d] < subs[d].count) break;
      counter[d] = 0;
    }
    if (d == dims) return;
  }
}

}  // namespace

// dim: the extents as doubles (a vector may be longer than 2^31 - 1);
// init: a length-1 vector of the buffer's type.
extern "C" SEXP shmr_buffer_create(SEXP type, SEXP dim, SEXP init, SEXP options) {
  SHMR_BEGIN
  // Read before any C++ object exists: the data of an ALTREP vector (1:2 is
  // one) comes from its class's code, which may raise.
  const double* dim_values = static_cast<const double*>(
      ALTREP(dim) ? cpp11::safe[DATAPTR_RO](dim) : DATAPTR_RO(dim));
  const void* init_value = ALTREP(init) ? cpp11::safe[DATAPTR_RO](init) : DATAPTR_RO(init);
  const R_xlen_t dim_count = ALTREP(dim) ? cpp11::safe[Rf_xlength](dim) : XLENGTH(dim);
  SEXP buffer = with_messages([&]() -> SEXP {
    format::NodeKind kind = kind_of(as_string(type));
    const R_xlen_t rank = dim_count;
    double total = 1;
    for (R_xlen_t i = 0; i < rank; ++i) total *= dim_values[i];
    if (!(total >= 0 && total <= static_cast<double>(R_XLEN_T_MAX)))
      throw Error(ErrorKind::InvalidArgument, "a buffer holds at most 2^52 elements");
    std::vector<int> extents;
    for (R_xlen_t i = 0; rank > 1 && i < rank; ++i) extents.push_back(static_cast<int>(dim_values[i]));
    RegionDescription description;
    NodeSpec data;
    data.kind = kind;
    data.length = static_cast<uint64_t>(total);
    data.zero_filled = true;
    if (rank > 1) {
      NodeSpec dims;
      dims.kind = format::NodeKind::Integer;
      dims.length = extents.size();
      dims.bytes = extents.data();
      description.nodes.push_back(dims);
      data.attributes.emplace_back("dim", 0);
    }
    description.nodes.push_back(data);
    description.root = description.nodes.size() - 1;
    description.original_class = "shmr_buffer";

    CreateOptions create = create_options(options);
    create.writable = true;
    check_room_for_new_mapping();
    auto mapping = std::make_shared<Mapping>(create_region(description, create));
    NodeView node = mapping->reader().node(description.root);
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
    return decode_object(mapping, description.root);
  });
  // Protected before anything else allocates: the first call of each
  // unwind_protect() (cpp11::safe's too) allocates its token, and a
  // collection there would free the new view. Only plain data is live here
  // (the view holds the mapping): an R error in PROTECT() skips nothing.
  PROTECT(buffer);
  cpp11::safe[mark_as_buffer](buffer);
  UNPROTECT(1);
  return buffer;
  SHMR_END
}

// Writes `value` (already of the buffer's type) at the positions that
// x[subscripts] <- value selects: `subscripts` has one element (positions
// along the whole vector) or one per dimension, each NULL (everything) or
// 1-based positions. Returns the buffer to bind to the variable.
extern "C" SEXP shmr_buffer_write(SEXP x, SEXP subscripts, SEXP value) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    ViewHandle* handle = underlying_view(x);
    if (handle == nullptr) throw Error(ErrorKind::InvalidArgument, "not a shared buffer");
    if (handle->mapping->is_closed()) throw Error(ErrorKind::Closed, "the buffer was closed");
    if (!view_writes_through(*handle) || handle->is_slice())
      throw Error(ErrorKind::InvalidArgument, "not a shared buffer");
    if (TYPEOF(value) != TYPEOF(x)) throw Error(ErrorKind::InvalidArgument, "value has the wrong type");

    const R_xlen_t given = XLENGTH(subscripts);
    SEXP dim = Rf_getAttrib(x, R_DimSymbol);
    std::vector<Subscript> subs(static_cast<size_t>(given));
    if (given == 1) {
      subs[0].extent = handle->node.length();
    } else {
      if (TYPEOF(dim) != INTSXP || XLENGTH(dim) != given)
        throw Error(ErrorKind::InvalidArgument, "incorrect number of subscripts");
      uint64_t stride = 1;
      for (R_xlen_t d = 0; d < given; ++d) {
        subs[d].extent = static_cast<uint64_t>(INTEGER(dim)[d]);
        subs[d].stride = stride;
        stride *= subs[d].extent;
      }
      if (stride != handle->node.length())
        throw Error(ErrorKind::InvalidArgument, "the buffer's dim does not match its length");
    }
    uint64_t n = 1;
    for (R_xlen_t d = 0; d < given; ++d) {
      Subscript& s = subs[d];
      s.positions = VECTOR_ELT(subscripts, d);
      if (s.positions == R_NilValue) {
        s.count = s.extent;
      } else {
        if (TYPEOF(s.positions) != INTSXP && TYPEOF(s.positions) != REALSXP)
          throw Error(ErrorKind::InvalidArgument, "invalid subscript");
        s.count = static_cast<uint64_t>(XLENGTH(s.positions));
        check_positions(s);
      }
      n *= s.count;
    }
    const uint64_t m = static_cast<uint64_t>(XLENGTH(value));
    if (n > 0) {
      // As in R, a length that is not a divisor recycles (the R method warns).
      if (m == 0) throw Error(ErrorKind::InvalidArgument, "replacement has length zero");
      // An ALTREP value runs its class's code, which may raise.
      const auto* in = static_cast<const unsigned char*>(
          ALTREP(value) ? cpp11::safe[DATAPTR_RO](value) : DATAPTR_RO(value));
      auto* out = static_cast<unsigned char*>(const_cast<void*>(handle->node.data()));
      write_selected(out, in, m, format::element_size(handle->node.kind()), subs);
    }
    // A view that reads the region is the buffer already; anything else (one
    // of R's wrappers, a private copy, a copy R made to change attributes and
    // has not settled yet) becomes a view of the buffer again, with the
    // attributes it has.
    if (view_handle(x) == handle && !handle->holds_private_values() &&
        handle->writable_copy != WritableCopy::Pending)
      return x;
    return cpp11::unwind_protect([&] {
      SEXP buffer = PROTECT(make_view(handle->mapping, handle->node));
      SHALLOW_DUPLICATE_ATTRIB(buffer, x);
      pin(buffer);
      UNPROTECT(1);
      return buffer;
    });
  });
  SHMR_END
}
