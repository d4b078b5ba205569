// ALTREP views of fixed-width vectors (logical, integer, double, complex,
// raw). The data pointer is the private copy-on-write mapping itself, so
// reads and even requests for a writable pointer cost nothing, and a write
// copies only the pages it touches.
#include "r_api.h"

#include <cstring>

#include "r_boundary.h"
#include "view.h"
#include "view_classes.h"

namespace shmr::glue {
namespace {

R_xlen_t view_length(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr && is_unavailable(x)) raise_unavailable(x);
  return handle == nullptr ? 0 : static_cast<R_xlen_t>(handle->length());
}

void* view_dataptr(SEXP x, Rboolean writable) {
  ViewHandle& handle = open_view_handle(x);
  // Until R holds a writable pointer, no page of the mapping can be written,
  // and page checks (Duplicate, Serialized_state) are skipped.
  if (writable) handle.mapping->note_writable_pointer();
  return const_cast<void*>(handle.data());
}

const void* view_dataptr_or_null(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || handle->mapping->is_closed()) return nullptr;
  return handle->data();
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
  if (view_has_private_pages(handle)) return nullptr;
  if (handle.mapping->is_detached()) return nullptr;
  return view_serialized_state(handle);
}

SEXP view_unserialize(SEXP cls, SEXP state) { return view_from_serialized_state(cls, state); }

// A duplicate of an unwritten view is a new view of the same node: O(1), and
// its own private pages keep the two objects independent.
//
// A writable share is different: R duplicates shallowly before a change
// (x[i] <- v on an object referenced twice), and that change would silently
// miss shared memory, so it is refused; deep duplicates (sort(), rev()) are
// ordinary private copies. Shared buffers (shared_buffer()) alias instead.
SEXP view_duplicate(SEXP x, Rboolean deep) {
  ViewHandle& handle = open_view_handle(x);
  if (handle.is_slice()) return nullptr;
  if (view_writes_through(handle)) {
    // An output buffer is meant to be written from anywhere: its duplicate
    // is another view of the same shared memory.
    if (Rf_inherits(x, "shmr_buffer")) return make_view(handle.mapping, handle.node);
    if (!deep) refuse_private_copy(handle);
    return nullptr;
  }
  if (view_has_private_pages(handle)) return nullptr;
  return fresh_view_of(handle);
}

// R reads element by element in places (c(), for one), so this is the hot
// path: the usual case is two accessor calls and two loads.
template <typename T>
const T* typed_data(SEXP x) {
  const ViewHandle* handle = own_handle(x);
  if (__builtin_expect(handle == nullptr || *handle->closed, 0)) open_view_handle(x);
  return static_cast<const T*>(handle->data());
}

template <typename T>
R_xlen_t get_region(SEXP x, R_xlen_t start, R_xlen_t size, T* out) {
  const T* data = typed_data<T>(x);
  R_xlen_t n = view_length(x);
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

template <typename ClassT>
void set_common_methods(ClassT cls) {
  R_set_altrep_Length_method(cls, view_length);
  R_set_altrep_Inspect_method(cls, view_inspect);
  R_set_altrep_Serialized_state_method(cls, view_state);
  R_set_altrep_Unserialize_method(cls, view_unserialize);
  R_set_altrep_Duplicate_method(cls, view_duplicate);
  R_set_altvec_Dataptr_method(cls, view_dataptr);
  R_set_altvec_Dataptr_or_null_method(cls, view_dataptr_or_null);
}

}  // namespace

void init_vector_view_classes(DllInfo* dll) {
  R_altrep_class_t integer_cls = R_make_altinteger_class("shmr_integer", "shmr", dll);
  set_common_methods(integer_cls);
  R_set_altinteger_Elt_method(integer_cls, integer_elt);
  R_set_altinteger_Get_region_method(integer_cls, integer_region);
  register_view_class(format::NodeKind::Integer, integer_cls);

  R_altrep_class_t logical_cls = R_make_altlogical_class("shmr_logical", "shmr", dll);
  set_common_methods(logical_cls);
  R_set_altlogical_Elt_method(logical_cls, logical_elt);
  R_set_altlogical_Get_region_method(logical_cls, logical_region);
  register_view_class(format::NodeKind::Logical, logical_cls);

  R_altrep_class_t real_cls = R_make_altreal_class("shmr_double", "shmr", dll);
  set_common_methods(real_cls);
  R_set_altreal_Elt_method(real_cls, real_elt);
  R_set_altreal_Get_region_method(real_cls, real_region);
  register_view_class(format::NodeKind::Double, real_cls);

  R_altrep_class_t complex_cls = R_make_altcomplex_class("shmr_complex", "shmr", dll);
  set_common_methods(complex_cls);
  R_set_altcomplex_Elt_method(complex_cls, complex_elt);
  R_set_altcomplex_Get_region_method(complex_cls, complex_region);
  register_view_class(format::NodeKind::Complex, complex_cls);

  R_altrep_class_t raw_cls = R_make_altraw_class("shmr_raw", "shmr", dll);
  set_common_methods(raw_cls);
  R_set_altraw_Elt_method(raw_cls, raw_elt);
  R_set_altraw_Get_region_method(raw_cls, raw_region);
  register_view_class(format::NodeKind::Raw, raw_cls);
}

}  // namespace shmr::glue
