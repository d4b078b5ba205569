// ALTREP view of a character vector stored in a String node. An element
// becomes a CHARSXP the first time R reads it, and that CHARSXP is kept in
// the view's cache: R never gets a string that nothing keeps alive (R's
// callers may allocate before they are done with it, as substr() does), and
// no element is made twice. The whole vector is materialised only when R
// asks for a data pointer or writes an element.
#include "r_api.h"

#include <climits>

#include "r_boundary.h"
#include "r_types.h"
#include "view.h"
#include "view_classes.h"

namespace shmr::glue {
namespace {

R_altrep_class_t string_cls;

// data2 of a view: R_NilValue until the first element is read, then a list
// of two slots.
enum CacheSlot : R_xlen_t {
  // The materialised vector (STRSXP, every element), once R asked for a data
  // pointer or wrote an element; R_NilValue before.
  kFull = 0,
  // Strings made so far. Packed layout, before kFull exists: a list of
  // chunks of kChunkSize elements, each R_NilValue until one of its elements
  // is read, then a STRSXP. Dictionary layout: a STRSXP of the dictionary's
  // entries. In both, R_BlankString marks a string not made yet.
  kMade = 1,
  kCacheSlots = 2,
};
constexpr int kChunkShift = 12;
constexpr R_xlen_t kChunkSize = R_xlen_t{1} << kChunkShift;

// The handle of a usable view; the checks cost two loads when it is usable.
inline ViewHandle& usable_handle(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (__builtin_expect(handle == nullptr || *handle->closed, 0)) return open_view_handle(x);
  return *handle;
}

SEXP make_charsxp(const StringRef& s) {
  if (s.encoding == format::StringEncoding::Missing) return NA_STRING;
  if (s.size > INT_MAX) Rf_error("shmr: string element is longer than R allows");
  return Rf_mkCharLenCE(s.data, static_cast<int>(s.size), r_encoding(s.encoding));
}

// Element `i` (packed layout) or dictionary entry `i` (dictionary layout)
// read from the region, as a new CHARSXP that nothing holds yet.
SEXP string_from_region(const ViewHandle& handle, R_xlen_t i) {
  ErrorMessage message;
  StringRef s{nullptr, 0, format::StringEncoding::Missing};
  capture_exception(message, [&] {
    const auto k = static_cast<uint64_t>(i);
    s = handle.node.is_dictionary() ? handle.node.dictionary_entry(k) : handle.node.string_at(k);
  });
  if (message.set()) raise_r_error(message);
  return make_charsxp(s);
}

R_xlen_t code_of(const ViewHandle& handle, R_xlen_t i) {
  ErrorMessage message;
  uint64_t code = 0;
  capture_exception(message, [&] { code = handle.node.code(static_cast<uint64_t>(i)); });
  if (message.set()) raise_r_error(message);
  return static_cast<R_xlen_t>(code);
}

SEXP cache_of(SEXP x) {
  SEXP cache = R_altrep_data2(x);
  if (cache != R_NilValue) return cache;
  cache = PROTECT(Rf_allocVector(VECSXP, kCacheSlots));
  R_set_altrep_data2(x, cache);
  UNPROTECT(1);
  return cache;
}

SEXP full_vector(SEXP x) {
  SEXP cache = R_altrep_data2(x);
  return cache == R_NilValue ? R_NilValue : VECTOR_ELT(cache, kFull);
}

// The kMade slot, made when missing.
SEXP made_strings(SEXP x, const ViewHandle& handle) {
  SEXP cache = cache_of(x);
  SEXP made = VECTOR_ELT(cache, kMade);
  if (made != R_NilValue) return made;
  if (handle.node.is_dictionary()) {
    made = Rf_allocVector(STRSXP, static_cast<R_xlen_t>(handle.node.dictionary_size()));
  } else {
    const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
    made = Rf_allocVector(VECSXP, (n + kChunkSize - 1) >> kChunkShift);
  }
  SET_VECTOR_ELT(cache, kMade, made);
  return made;
}

// Made strings are looked up here. The first time a string is asked for
// it is made and kept, so R never gets a CHARSXP that nothing keeps alive.
// An empty string stays R_BlankString (the mark) and is made again each
// time: mkCharLenCE() returns R's permanent blank string for it.
inline SEXP kept(SEXP made, R_xlen_t at, const ViewHandle& handle, R_xlen_t from) {
  SEXP s = STRING_ELT(made, at);
  if (s != R_BlankString) return s;
  s = string_from_region(handle, from);
  SET_STRING_ELT(made, at, s);
  return s;
}

// Element `i` before kFull exists. The returned CHARSXP is held by `x`.
SEXP cached_element(SEXP x, const ViewHandle& handle, R_xlen_t i) {
  SEXP made = made_strings(x, handle);
  if (handle.node.is_dictionary()) {
    const R_xlen_t k = code_of(handle, i);
    return kept(made, k, handle, k);
  }
  const R_xlen_t c = i >> kChunkShift;
  SEXP chunk = VECTOR_ELT(made, c);
  if (chunk == R_NilValue) {
    const R_xlen_t first = c << kChunkShift;
    const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
    chunk = Rf_allocVector(STRSXP, n - first < kChunkSize ? n - first : kChunkSize);
    SET_VECTOR_ELT(made, c, chunk);
  }
  return kept(chunk, i & (kChunkSize - 1), handle, i);
}

// Element `i`, from the materialised vector or the cache.
inline SEXP element(SEXP x, const ViewHandle& handle, R_xlen_t i) {
  SEXP full = full_vector(x);
  if (full != R_NilValue) return STRING_ELT(full, i);
  return cached_element(x, handle, i);
}

// The materialised vector, made from the cache and the region (each string
// made once); a packed view's chunks are dropped afterwards.
SEXP materialized(SEXP x) {
  SEXP full = full_vector(x);
  if (full != R_NilValue) return full;
  const ViewHandle& handle = usable_handle(x);
  const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
  full = PROTECT(Rf_allocVector(STRSXP, n));
  SEXP made = made_strings(x, handle);
  if (handle.node.is_dictionary()) {
    for (R_xlen_t i = 0; i < n; ++i) {
      const R_xlen_t k = code_of(handle, i);
      SET_STRING_ELT(full, i, kept(made, k, handle, k));
    }
  } else {
    for (R_xlen_t first = 0; first < n; first += kChunkSize) {
      SEXP chunk = VECTOR_ELT(made, first >> kChunkShift);
      const R_xlen_t count = n - first < kChunkSize ? n - first : kChunkSize;
      for (R_xlen_t j = 0; j < count; ++j) {
        SEXP s = chunk == R_NilValue ? R_BlankString : STRING_ELT(chunk, j);
        if (s == R_BlankString) s = string_from_region(handle, first + j);
        SET_STRING_ELT(full, first + j, s);
      }
    }
  }
  SEXP cache = cache_of(x);
  SET_VECTOR_ELT(cache, kFull, full);
  if (!handle.node.is_dictionary()) SET_VECTOR_ELT(cache, kMade, R_NilValue);
  UNPROTECT(1);
  return full;
}

R_xlen_t string_length(SEXP x) {
  ViewHandle* handle = own_handle(x);
  return handle == nullptr ? 0 : static_cast<R_xlen_t>(handle->length());
}

SEXP string_elt(SEXP x, R_xlen_t i) { return element(x, usable_handle(x), i); }

void string_set_elt(SEXP x, R_xlen_t i, SEXP value) {
  ViewHandle& handle = usable_handle(x);
  if (view_writes_through(handle))
    Rf_error("shmr: character vectors of a writable share cannot be changed in place; "
             "only logical, integer, double, complex and raw vectors can");
  PROTECT(value);
  SEXP full = materialized(x);
  handle.cache_written = true;
  SET_STRING_ELT(full, i, value);
  UNPROTECT(1);
}

void* string_dataptr(SEXP x, Rboolean writable) {
  ViewHandle& handle = usable_handle(x);
  SEXP full = materialized(x);
  if (writable) handle.cache_written = true;
  return const_cast<SEXP*>(STRING_PTR_RO(full));
}

const void* string_dataptr_or_null(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || *handle->closed) return nullptr;
  SEXP full = full_vector(x);
  return full == R_NilValue ? nullptr : STRING_PTR_RO(full);
}

Rboolean string_inspect(SEXP x, int, int, int, void (*)(SEXP, int, int, int)) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) {
    Rprintf(" shmr string view (released)\n");
  } else {
    Rprintf(" shmr string view of %s node %llu%s%s\n", handle->mapping->region().name().c_str(),
            static_cast<unsigned long long>(handle->node.index()),
            full_vector(x) != R_NilValue ? " (materialised)" : "",
            handle->mapping->is_closed() ? " (closed)" : "");
  }
  return TRUE;
}

SEXP string_state(SEXP x) {
  ViewHandle& handle = open_view_handle(x);
  if (handle.cache_written || handle.mapping->is_detached()) return nullptr;
  return view_serialized_state(handle);
}

SEXP string_unserialize(SEXP cls, SEXP state) { return view_from_serialized_state(cls, state); }

// A duplicate is a new view of the same node; when this one is materialised
// it starts with a copy of the materialised vector (a copy of pointers, as
// for an ordinary character vector), so nothing is read from the region
// again.
SEXP string_duplicate(SEXP x, Rboolean) {
  ViewHandle& handle = open_view_handle(x);
  if (handle.cache_written) return nullptr;
  SEXP copy = fresh_view_of(handle);
  if (copy == nullptr) return nullptr;
  SEXP full = full_vector(x);
  if (full == R_NilValue) return copy;
  PROTECT(copy);
  SEXP cache = cache_of(copy);
  SET_VECTOR_ELT(cache, kFull, Rf_duplicate(full));
  UNPROTECT(1);
  return copy;
}

// x[i]: the elements from the cache (made once), never one method call each.
SEXP string_extract_subset(SEXP x, SEXP index, SEXP) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || *handle->closed) return nullptr;
  if (TYPEOF(index) != INTSXP && TYPEOF(index) != REALSXP) return nullptr;
  const R_xlen_t n = static_cast<R_xlen_t>(handle->length());
  const R_xlen_t count = XLENGTH(index);
  SEXP result = PROTECT(Rf_allocVector(STRSXP, count));
  SEXP full = full_vector(x);
  if (TYPEOF(index) == INTSXP) {
    const int* p = INTEGER_RO(index);
    for (R_xlen_t k = 0; k < count; ++k) {
      const int i = p[k];
      if (i <= 0 || i > n) {
        SET_STRING_ELT(result, k, NA_STRING);
      } else {
        SET_STRING_ELT(result, k, full != R_NilValue ? STRING_ELT(full, i - 1)
                                                     : cached_element(x, *handle, i - 1));
      }
    }
  } else {
    const double* p = REAL_RO(index);
    for (R_xlen_t k = 0; k < count; ++k) {
      const double d = p[k];
      // As R's ExtractSubset: d - 1 truncated (bounds first, so it is defined).
      if (!R_FINITE(d) || d <= 0 || d >= static_cast<double>(n) + 1) {
        SET_STRING_ELT(result, k, NA_STRING);
      } else {
        const auto i = static_cast<R_xlen_t>(d - 1);
        SET_STRING_ELT(result, k, full != R_NilValue ? STRING_ELT(full, i)
                                                     : cached_element(x, *handle, i));
      }
    }
  }
  UNPROTECT(1);
  return result;
}

int string_no_na(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) return 0;
  constexpr uint32_t kKnown = format::kNodeValuesScanned | format::kNodeNoMissing;
  return (handle->node.flags() & kKnown) == kKnown && view_values_trusted(*handle) ? 1 : 0;
}

}  // namespace

SEXP string_view_written_values(SEXP x) {
  ViewHandle* handle = view_handle(x);
  if (handle == nullptr || !handle->cache_written || R_altrep_data2(x) == R_NilValue)
    return R_NilValue;
  return full_vector(x);
}

void init_string_view_class(DllInfo* dll) {
  string_cls = R_make_altstring_class("shmr_string", "shmr", dll);
  R_set_altrep_Length_method(string_cls, string_length);
  R_set_altrep_Inspect_method(string_cls, string_inspect);
  R_set_altrep_Serialized_state_method(string_cls, string_state);
  R_set_altrep_Unserialize_method(string_cls, string_unserialize);
  R_set_altrep_Duplicate_method(string_cls, string_duplicate);
  R_set_altvec_Dataptr_method(string_cls, string_dataptr);
  R_set_altvec_Dataptr_or_null_method(string_cls, string_dataptr_or_null);
  R_set_altstring_Elt_method(string_cls, string_elt);
  R_set_altstring_Set_elt_method(string_cls, string_set_elt);
  R_set_altvec_Extract_subset_method(string_cls, string_extract_subset);
  R_set_altstring_No_NA_method(string_cls, string_no_na);
  register_view_class(format::NodeKind::String, string_cls);
}

}  // namespace shmr::glue
