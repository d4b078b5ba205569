// ALTREP views of fixed-width vectors (logical, integer, double, complex,
// raw). The data pointer is the private copy-on-write mapping itself, so
// reads and even requests for a writable pointer cost nothing, and a write
// copies only the pages it touches.
#include "r_api.h"

#include <climits>
#include <cstring>

#include "r_boundary.h"
#include "r_types.h"
#include "view.h"
#include "view_classes.h"
#include "writable_copies.h"

namespace shmr::glue {
namespace {

// The handle of a usable view: two accessor calls and two loads; anything
// else goes the slow way, which raises.
inline const ViewHandle& usable_handle(SEXP x) {
  const ViewHandle* handle = own_handle(x);
  if (__builtin_expect(handle == nullptr || *handle->slow_path, 0)) return open_view_handle(x);
  return *handle;
}

// The last view R asked about on this thread: R calls Length, Dataptr or
// Elt once per element in places (c(), and so range()), and with this entry
// the next call for the same view, under the same generation (view.h), costs
// a comparison instead of two calls into R. Initial-exec thread-local
// storage is read without a call, where the platform has it.
struct LastView {
  SEXP view = nullptr;
  const void* begin = nullptr;
  const bool* slow_path = nullptr;
  R_xlen_t length = 0;
  uint64_t generation = 0;
  // This view handed R a data pointer, with all that entails done
  // (view_dataptr()), and nothing has changed since (a change advances the
  // generation).
  bool pointer_given = false;
};
#if defined(__GLIBC__)
thread_local LastView last_view __attribute__((tls_model("initial-exec")));
#else
thread_local LastView last_view;
#endif

inline const LastView* last_view_if(SEXP x, uint64_t now) {
  const LastView& last = last_view;
  return __builtin_expect(last.view == x && last.generation == now, 1) ? &last : nullptr;
}

inline void remember_view(SEXP x, const ViewHandle& handle, uint64_t now, bool pointer_given) {
  last_view = LastView{x, handle.begin, handle.slow_path, static_cast<R_xlen_t>(handle.count), now,
                       pointer_given};
}

template <typename T>
inline const T* typed_data(SEXP x) {
  const uint64_t now = current_view_generation();
  const LastView* last = last_view_if(x, now);
  if (last != nullptr && !*last->slow_path) return static_cast<const T*>(last->begin);
  const ViewHandle& handle = usable_handle(x);
  remember_view(x, handle, now, false);
  return static_cast<const T*>(handle.begin);
}

R_xlen_t view_length(SEXP x) {
  const uint64_t now = current_view_generation();
  if (const LastView* last = last_view_if(x, now)) return last->length;
  const ViewHandle* handle = own_handle(x);
  if (handle == nullptr) handle = handle_for_length(x);
  if (handle == nullptr) return 0;
  remember_view(x, *handle, now, false);
  return static_cast<R_xlen_t>(handle->count);
}

// A data pointer is how C code writes: the value flags are checked again
// (against the pages) after one was handed out. A read-only one counts too:
// Rcpp takes every vector's pointer with DATAPTR_RO() and writes through it
// (x[i] = v on a NumericVector argument).
void* view_dataptr(SEXP x, Rboolean writable) {
  const uint64_t now = current_view_generation();
  const LastView* last = last_view_if(x, now);
  if (last != nullptr && !*last->slow_path && last->pointer_given)
    return const_cast<void*>(last->begin);
  ViewHandle* handle = own_handle(x);
  if (__builtin_expect(handle == nullptr || *handle->slow_path, 0)) handle = &open_view_handle(x);
  // Until C code holds a pointer, no page of the mapping can have been
  // written, and the page checks (Duplicate, Serialized_state, value flags)
  // are skipped.
  handle->mapping->note_writable_pointer();
  const bool pending = handle->writable_copy == WritableCopy::Pending;
  if (writable && pending && !handle->reads_in_place) return settle_writable_copy(x, *handle);
  // A pending copy is settled by the first writable request, never cached.
  remember_view(x, *handle, now, !pending);
  return const_cast<void*>(handle->begin);
}

const void* view_dataptr_or_null(SEXP x) {
  const LastView* last = last_view_if(x, current_view_generation());
  if (last != nullptr && !*last->slow_path) return last->begin;
  const ViewHandle* handle = own_handle(x);
  if (handle == nullptr || *handle->slow_path) return nullptr;
  return handle->begin;
}

Rboolean view_inspect(SEXP x, int, int, int, void (*)(SEXP, int, int, int)) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) {
    Rprintf(" shmr view (released)\n");
  } else {
    Rprintf(" shmr view of %s node %llu%s\n", handle->mapping->region().name().c_str(),
            static_cast<unsigned long long>(handle->node.index()),
            handle->mapping->is_closed() ? " (closed)" : "");
  }
  return TRUE;
}

SEXP view_state(SEXP x) {
  // Saved again, an object whose region could not be had keeps its reference.
  if (is_unavailable(x)) return unavailable_state(x);
  ViewHandle& handle = open_view_handle(x);
  // A slice has no name of its own: it travels by value.
  if (handle.is_slice()) return nullptr;
  // Written pages live only here: send the data itself, not the name.
  if (handle.holds_private_values() || view_holds_own_writes(handle)) return nullptr;
  if (!handle.mapping->name_opens_here()) return nullptr;
  return view_serialized_state(handle);
}

SEXP view_unserialize(SEXP cls, SEXP state) { return view_from_serialized_state(cls, state); }

// A duplicate of an unwritten view is a new view of the same node: O(1), and
// its own private pages keep the two objects independent. Copies of a
// writable share are settled by writable_copies.h.
SEXP view_duplicate(SEXP x, Rboolean deep) {
  ViewHandle& handle = open_view_handle(x);
  if (handle.is_slice()) return nullptr;
  if (view_writes_through(handle)) return duplicate_writable_view(x, handle, deep);
  if (view_holds_own_writes(handle)) return nullptr;
  return fresh_view_of(handle);
}

template <typename T>
R_xlen_t get_region(SEXP x, R_xlen_t start, R_xlen_t size, T* out) {
  const ViewHandle& handle = usable_handle(x);
  const T* data = static_cast<const T*>(handle.begin);
  const R_xlen_t n = static_cast<R_xlen_t>(handle.count);
  if (start >= n) return 0;
  R_xlen_t count = start + size > n ? n - start : size;
  std::memcpy(out, data + start, static_cast<size_t>(count) * sizeof(T));
  return count;
}

int integer_elt(SEXP x, R_xlen_t i) { return typed_data<int>(x)[i]; }
int logical_elt(SEXP x, R_xlen_t i) { return typed_data<int>(x)[i]; }
double real_elt(SEXP x, R_xlen_t i) { return typed_data<double>(x)[i]; }
Rcomplex complex_elt(SEXP x, R_xlen_t i) { return typed_data<Rcomplex>(x)[i]; }
Rbyte raw_elt(SEXP x, R_xlen_t i) { return typed_data<Rbyte>(x)[i]; }

R_xlen_t integer_region(SEXP x, R_xlen_t s, R_xlen_t n, int* out) { return get_region(x, s, n, out); }
R_xlen_t logical_region(SEXP x, R_xlen_t s, R_xlen_t n, int* out) { return get_region(x, s, n, out); }
R_xlen_t real_region(SEXP x, R_xlen_t s, R_xlen_t n, double* out) { return get_region(x, s, n, out); }
R_xlen_t complex_region(SEXP x, R_xlen_t s, R_xlen_t n, Rcomplex* out) {
  return get_region(x, s, n, out);
}
R_xlen_t raw_region(SEXP x, R_xlen_t s, R_xlen_t n, Rbyte* out) { return get_region(x, s, n, out); }

// ---- x[i] -------------------------------------------------------------

// A contiguous range at least this large becomes a zero-copy slice (a view
// on a mapping of its own, so a write to it stays its own); smaller ones are
// copied, which is cheaper than making a view.
constexpr uint64_t kSliceBytes = uint64_t{1} << 20;

// Position k (0-based) of the index R passes to Extract_subset (1-based
// positions, already freed of negatives, logicals and names), or -1 for NA
// and out of range, as R's own ExtractSubset reads it.
inline R_xlen_t position(int i, R_xlen_t n) { return 0 < i && i <= n ? i - 1 : -1; }
inline R_xlen_t position(double d, R_xlen_t n) {
  // R truncates d - 1; the bounds come first so the conversion is defined.
  return R_FINITE(d) && d > 0 && d < static_cast<double>(n) + 1 ? static_cast<R_xlen_t>(d - 1) : -1;
}

// The first position when the index names positions first, first + 1, ...
// all within the vector, else -1. Stops at the first gap; an ALTREP index
// (1:n) is read in batches, never expanded.
template <typename I>
R_xlen_t contiguous_start(SEXP index, R_xlen_t n, R_xlen_t count) {
  constexpr R_xlen_t kBatch = 512;
  I buffer[kBatch];
  const I* direct = static_cast<const I*>(DATAPTR_OR_NULL(index));
  R_xlen_t first = -1;
  for (R_xlen_t at = 0; at < count; at += kBatch) {
    R_xlen_t got = count - at < kBatch ? count - at : kBatch;
    const I* p = direct != nullptr ? direct + at : buffer;
    if (direct == nullptr) {
      if constexpr (sizeof(I) == sizeof(int))
        got = INTEGER_GET_REGION(index, at, got, reinterpret_cast<int*>(buffer));
      else
        got = REAL_GET_REGION(index, at, got, reinterpret_cast<double*>(buffer));
    }
    if (at == 0) {
      first = position(p[0], n);
      if (first < 0) return -1;
    }
    for (R_xlen_t k = 0; k < got; ++k)
      if (position(p[k], n) != first + at + k) return -1;
  }
  return first;
}

template <typename T, typename I>
void gather_with(const T* data, R_xlen_t n, const I* p, R_xlen_t count, T* out, T na) {
  for (R_xlen_t k = 0; k < count; ++k) {
    const R_xlen_t at = position(p[k], n);
    out[k] = at >= 0 ? data[at] : na;
  }
}

template <typename T>
void gather(const T* data, R_xlen_t n, SEXP index, T* out, T na) {
  const R_xlen_t count = XLENGTH(index);
  if (TYPEOF(index) == INTSXP)
    gather_with(data, n, INTEGER_RO(index), count, out, na);
  else
    gather_with(data, n, REAL_RO(index), count, out, na);
}

template <typename T>
SEXP extract_subset(SEXP x, SEXP index, T na) {
  ViewHandle* handle = own_handle(x);
  // A released or closed view (R's own path raises the error), or one that
  // must first become a private copy (R's own path makes it one).
  if (handle == nullptr || *handle->slow_path) return nullptr;
  if (TYPEOF(index) != INTSXP && TYPEOF(index) != REALSXP) return nullptr;
  const R_xlen_t n = static_cast<R_xlen_t>(handle->count);
  const R_xlen_t count = XLENGTH(index);
  const T* data = static_cast<const T*>(handle->begin);

  const R_xlen_t first = count == 0 ? -1
                         : TYPEOF(index) == INTSXP ? contiguous_start<int>(index, n, count)
                                                   : contiguous_start<double>(index, n, count);
  if (first >= 0 && static_cast<uint64_t>(count) * sizeof(T) >= kSliceBytes &&
      !view_writes_through(*handle)) {
    SEXP slice = slice_on_own_mapping(*handle, static_cast<uint64_t>(first),
                                      static_cast<uint64_t>(count));
    if (slice != nullptr) return slice;
  }
  SEXP result = PROTECT(Rf_allocVector(TYPEOF(x), count));
  T* out = static_cast<T*>(writable_data(result));
  if (first >= 0) {
    std::memcpy(out, data + first, static_cast<size_t>(count) * sizeof(T));
  } else {
    gather(data, n, index, out, na);
  }
  UNPROTECT(1);
  return result;
}

SEXP integer_subset(SEXP x, SEXP index, SEXP) { return extract_subset<int>(x, index, NA_INTEGER); }
SEXP logical_subset(SEXP x, SEXP index, SEXP) { return extract_subset<int>(x, index, NA_LOGICAL); }
SEXP real_subset(SEXP x, SEXP index, SEXP) { return extract_subset<double>(x, index, NA_REAL); }
SEXP complex_subset(SEXP x, SEXP index, SEXP) {
  Rcomplex na;  // a struct before R 4.3, a union after: set by member
  na.r = NA_REAL;
  na.i = NA_REAL;
  return extract_subset<Rcomplex>(x, index, na);
}
SEXP raw_subset(SEXP x, SEXP index, SEXP) { return extract_subset<Rbyte>(x, index, Rbyte{0}); }

// ---- sortedness and NAs, from the flags the writer recorded ------------

int view_is_sorted(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) return UNKNOWN_SORTEDNESS;
  const uint32_t flags = handle->node.flags();
  constexpr uint32_t kKnown = format::kNodeValuesScanned | format::kNodeNoMissing;
  if ((flags & kKnown) != kKnown || !view_values_trusted(*handle)) return UNKNOWN_SORTEDNESS;
  if (flags & format::kNodeIncreasing) return SORTED_INCR;
  if (flags & format::kNodeDecreasing) return SORTED_DECR;
  // The flags describe the whole node: a part of an unsorted node (x[a:b],
  // a matrix column) may well be sorted.
  return handle->is_slice() ? UNKNOWN_SORTEDNESS : KNOWN_UNSORTED;
}

int view_no_na(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) return 0;
  constexpr uint32_t kKnown = format::kNodeValuesScanned | format::kNodeNoMissing;
  return (handle->node.flags() & kKnown) == kKnown && view_values_trusted(*handle) ? 1 : 0;
}

// ---- as.numeric(), as.integer(), as.logical() --------------------------

// Conversions that cannot warn, straight from the mapped data (R's own path
// reads one element per method call). Classed objects (factors, dates) and
// conversions that may warn go R's way.
template <typename From, typename To, typename Convert>
SEXP converted(const ViewHandle& handle, SEXP x, SEXPTYPE type, Convert convert) {
  const R_xlen_t n = static_cast<R_xlen_t>(handle.count);
  const From* in = static_cast<const From*>(handle.begin);
  SEXP out = PROTECT(Rf_allocVector(type, n));
  To* to = static_cast<To*>(writable_data(out));
  for (R_xlen_t i = 0; i < n; ++i) to[i] = convert(in[i]);
  SHALLOW_DUPLICATE_ATTRIB(out, x);
  UNPROTECT(1);
  return out;
}

SEXP view_coerce(SEXP x, int type) {
  const ViewHandle* handle = own_handle(x);
  if (handle != nullptr && TYPEOF(x) == INTSXP && type == REALSXP && Rf_isObject(x))
    refuse_class_widening(x, *handle);
  if (handle == nullptr || *handle->slow_path || Rf_isObject(x)) return nullptr;
  const ViewHandle& h = *handle;
  switch (TYPEOF(x)) {
    case INTSXP:
    case LGLSXP: {
      const bool logical = TYPEOF(x) == LGLSXP;
      if (type == REALSXP)
        return converted<int, double>(h, x, REALSXP, [](int v) {
          return v == NA_INTEGER ? NA_REAL : static_cast<double>(v);
        });
      if (type == INTSXP && logical)
        return converted<int, int>(h, x, INTSXP, [](int v) { return v; });
      if (type == LGLSXP && !logical)
        return converted<int, int>(h, x, LGLSXP, [](int v) {
          return v == NA_INTEGER ? NA_LOGICAL : (v != 0 ? 1 : 0);
        });
      return nullptr;
    }
    case REALSXP: {
      if (type == LGLSXP)
        return converted<double, int>(h, x, LGLSXP, [](double v) {
          return ISNAN(v) ? NA_LOGICAL : (v != 0 ? 1 : 0);
        });
      if (type != INTSXP) return nullptr;
      // Out of range values make R warn: leave those vectors to R.
      const double* in = static_cast<const double*>(h.begin);
      for (uint64_t i = 0; i < h.count; ++i)
        if (!ISNAN(in[i]) && (in[i] >= INT_MAX + 1. || in[i] <= INT_MIN)) return nullptr;
      return converted<double, int>(h, x, INTSXP, [](double v) {
        return ISNAN(v) ? NA_INTEGER : static_cast<int>(v);
      });
    }
    default:
      return nullptr;
  }
}

template <typename ClassT>
void set_common_methods(ClassT cls) {
  R_set_altrep_Length_method(cls, view_length);
  R_set_altrep_Inspect_method(cls, view_inspect);
  R_set_altrep_Serialized_state_method(cls, view_state);
  R_set_altrep_Unserialize_method(cls, view_unserialize);
  R_set_altrep_Duplicate_method(cls, view_duplicate);
  R_set_altvec_Dataptr_method(cls, view_dataptr);
  R_set_altvec_Dataptr_or_null_method(cls, view_dataptr_or_null);
  R_set_altrep_Coerce_method(cls, view_coerce);
}

}  // namespace

void init_vector_view_classes(DllInfo* dll) {
  R_altrep_class_t integer_cls = R_make_altinteger_class("shmr_integer", "shmr", dll);
  set_common_methods(integer_cls);
  R_set_altinteger_Elt_method(integer_cls, integer_elt);
  R_set_altinteger_Get_region_method(integer_cls, integer_region);
  R_set_altvec_Extract_subset_method(integer_cls, integer_subset);
  R_set_altinteger_Is_sorted_method(integer_cls, view_is_sorted);
  R_set_altinteger_No_NA_method(integer_cls, view_no_na);
  register_view_class(format::NodeKind::Integer, integer_cls);

  R_altrep_class_t logical_cls = R_make_altlogical_class("shmr_logical", "shmr", dll);
  set_common_methods(logical_cls);
  R_set_altlogical_Elt_method(logical_cls, logical_elt);
  R_set_altlogical_Get_region_method(logical_cls, logical_region);
  R_set_altvec_Extract_subset_method(logical_cls, logical_subset);
  R_set_altlogical_No_NA_method(logical_cls, view_no_na);
  register_view_class(format::NodeKind::Logical, logical_cls);

  R_altrep_class_t real_cls = R_make_altreal_class("shmr_double", "shmr", dll);
  set_common_methods(real_cls);
  R_set_altreal_Elt_method(real_cls, real_elt);
  R_set_altreal_Get_region_method(real_cls, real_region);
  R_set_altvec_Extract_subset_method(real_cls, real_subset);
  R_set_altreal_Is_sorted_method(real_cls, view_is_sorted);
  R_set_altreal_No_NA_method(real_cls, view_no_na);
  register_view_class(format::NodeKind::Double, real_cls);

  R_altrep_class_t complex_cls = R_make_altcomplex_class("shmr_complex", "shmr", dll);
  set_common_methods(complex_cls);
  R_set_altcomplex_Elt_method(complex_cls, complex_elt);
  R_set_altcomplex_Get_region_method(complex_cls, complex_region);
  R_set_altvec_Extract_subset_method(complex_cls, complex_subset);
  register_view_class(format::NodeKind::Complex, complex_cls);

  R_altrep_class_t raw_cls = R_make_altraw_class("shmr_raw", "shmr", dll);
  set_common_methods(raw_cls);
  R_set_altraw_Elt_method(raw_cls, raw_elt);
  R_set_altraw_Get_region_method(raw_cls, raw_region);
  R_set_altvec_Extract_subset_method(raw_cls, raw_subset);
  register_view_class(format::NodeKind::Raw, raw_cls);
}

}  // namespace shmr::glue
