// ALTREP view of a character vector stored in a String node. An element
// becomes a CHARSXP the first time R reads it, and that CHARSXP is kept in
// the view's cache: R never gets a string that nothing keeps alive (R's
// callers may allocate before they are done with it, as substr() does), and
// no element is made twice. The whole vector is materialised only when R
// asks for a data pointer or writes an element.
#include "r_api.h"

#include <R_ext/Utils.h>

#include <cctype>
#include <climits>
#include <cmath>
#include <cstring>

#include "r_boundary.h"
#include "r_types.h"
#include "view.h"
#include "view_classes.h"
#include "writable_copies.h"

namespace shmr::glue {
namespace {

R_altrep_class_t string_cls;

// data2 of a view: R_NilValue until the first string is made, then a list.
// The handle keeps pointers to the elements of these vectors.
enum CacheSlot : R_xlen_t {
  // The materialised vector (STRSXP, every element), once R asked for a data
  // pointer or wrote an element; R_NilValue before.
  kFull = 0,
  // Strings made so far. Packed layout, before kFull exists: a list of
  // chunks of kChunkSize elements, each R_NilValue until one of its elements
  // is made, then a STRSXP. Dictionary layout: a STRSXP of the dictionary's
  // entries. In both, R_BlankString marks a string not made yet.
  kMade = 1,
  // Packed layout: a raw vector of one pointer per chunk, to its elements.
  kChunkTable = 2,
  kCacheSlots = 3,
};
constexpr int kChunkShift = 12;
constexpr R_xlen_t kChunkSize = R_xlen_t{1} << kChunkShift;

// The handle of a usable view; the checks cost two loads when it is usable.
inline ViewHandle& usable_handle(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (__builtin_expect(handle == nullptr || *handle->slow_path, 0)) return open_view_handle(x);
  return *handle;
}

SEXP make_charsxp(const StringRef& s) {
  if (s.encoding == format::StringEncoding::Missing) return NA_STRING;
  if (s.size > INT_MAX) Rf_error("shmr: string element is longer than R allows");
  return Rf_mkCharLenCE(s.data, static_cast<int>(s.size), r_encoding(s.encoding));
}

// Raises the error of an invalid element (or dictionary entry) `i`: the
// throwing reader says what is wrong. Never returns.
[[noreturn]] void raise_invalid_element(const ViewHandle& handle, R_xlen_t i, bool entry) {
  ErrorMessage message;
  capture_exception(message, [&] {
    const auto k = static_cast<uint64_t>(i);
    if (entry) {
      handle.node.dictionary_entry(k);
    } else {
      handle.node.string_at(k);
    }
  });
  if (!message.set()) message.assign("shmr: invalid string element");
  raise_r_error(message);
}

// Element `i` (packed layout) or dictionary entry `i` (dictionary layout)
// read from the region, as a new CHARSXP that nothing holds yet.
SEXP string_from_region(const ViewHandle& handle, R_xlen_t i) {
  StringRef s{nullptr, 0, format::StringEncoding::Missing};
  const bool entry = handle.node.is_dictionary();
  const auto k = static_cast<uint64_t>(i);
  const bool valid = entry ? handle.node.try_dictionary_entry(k, s) : handle.node.try_string_at(k, s);
  if (__builtin_expect(!valid, 0)) raise_invalid_element(handle, i, entry);
  return make_charsxp(s);
}

inline R_xlen_t code_of(const ViewHandle& handle, R_xlen_t i) {
  uint64_t code = 0;
  if (__builtin_expect(!handle.node.try_code(static_cast<uint64_t>(i), code), 0)) {
    ErrorMessage message;
    capture_exception(message, [&] { handle.node.code(static_cast<uint64_t>(i)); });
    if (!message.set()) message.assign("shmr: invalid string code");
    raise_r_error(message);
  }
  return static_cast<R_xlen_t>(code);
}

// Sets up data2 and the handle's pointers into it.
SEXP cache_of(SEXP x, ViewHandle& handle) {
  SEXP cache = R_altrep_data2(x);
  if (handle.strings_cached) return cache;
  cache = PROTECT(Rf_allocVector(VECSXP, kCacheSlots));
  if (handle.node.is_dictionary()) {
    SEXP entries = Rf_allocVector(STRSXP, static_cast<R_xlen_t>(handle.node.dictionary_size()));
    SET_VECTOR_ELT(cache, kMade, entries);
    handle.strings_entries = STRING_PTR_RO(entries);
  } else {
    const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
    const R_xlen_t chunks = (n + kChunkSize - 1) >> kChunkShift;
    SET_VECTOR_ELT(cache, kMade, Rf_allocVector(VECSXP, chunks));
    SEXP table = Rf_allocVector(RAWSXP, chunks * static_cast<R_xlen_t>(sizeof(SEXP*)));
    SET_VECTOR_ELT(cache, kChunkTable, table);
    if (chunks > 0) {
      std::memset(RAW(table), 0, static_cast<size_t>(XLENGTH(table)));
      handle.strings_chunks = reinterpret_cast<const SEXP* const*>(RAW(table));
    }
  }
  R_set_altrep_data2(x, cache);
  handle.strings_cached = true;
  UNPROTECT(1);
  return cache;
}

// Makes (and keeps) the string for element `i` that the fast path of
// element() did not find.
SEXP make_element(SEXP x, ViewHandle& handle, R_xlen_t i) {
  SEXP cache = cache_of(x, handle);
  if (handle.node.is_dictionary()) {
    const R_xlen_t k = code_of(handle, i);
    SEXP s = handle.strings_entries[k];
    if (s != R_BlankString) return s;
    s = string_from_region(handle, k);
    SET_STRING_ELT(VECTOR_ELT(cache, kMade), k, s);
    return s;
  }
  const R_xlen_t c = i >> kChunkShift;
  SEXP chunks = VECTOR_ELT(cache, kMade);
  SEXP chunk = VECTOR_ELT(chunks, c);
  if (chunk == R_NilValue) {
    const R_xlen_t first = c << kChunkShift;
    const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
    chunk = Rf_allocVector(STRSXP, n - first < kChunkSize ? n - first : kChunkSize);
    SET_VECTOR_ELT(chunks, c, chunk);
    reinterpret_cast<const SEXP**>(RAW(VECTOR_ELT(cache, kChunkTable)))[c] = STRING_PTR_RO(chunk);
  }
  const R_xlen_t j = i & (kChunkSize - 1);
  SEXP s = STRING_ELT(chunk, j);
  if (s != R_BlankString) return s;
  // An empty element stays R_BlankString (the mark) and is made again each
  // time: mkCharLenCE() returns R's permanent blank string for it.
  s = string_from_region(handle, i);
  SET_STRING_ELT(chunk, j, s);
  return s;
}

// Element `i`: a string made once and held by the view, so R never gets a
// CHARSXP that nothing keeps alive. Reading a made one costs no R call.
inline SEXP element(SEXP x, ViewHandle& handle, R_xlen_t i) {
  if (handle.strings_full != nullptr) return handle.strings_full[i];
  if (handle.strings_entries != nullptr) {
    SEXP s = handle.strings_entries[code_of(handle, i)];
    if (s != R_BlankString) return s;
  } else if (handle.strings_chunks != nullptr) {
    const SEXP* chunk = handle.strings_chunks[i >> kChunkShift];
    if (chunk != nullptr) {
      SEXP s = chunk[i & (kChunkSize - 1)];
      if (s != R_BlankString) return s;
    }
  }
  return make_element(x, handle, i);
}

SEXP full_vector(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || handle->strings_full == nullptr) return R_NilValue;
  return VECTOR_ELT(R_altrep_data2(x), kFull);
}

void set_full(SEXP x, ViewHandle& handle, SEXP full) {
  SEXP cache = cache_of(x, handle);
  SET_VECTOR_ELT(cache, kFull, full);
  handle.strings_full = STRING_PTR_RO(full);
  if (!handle.node.is_dictionary()) {
    // Every element is in the full vector now: the chunks are garbage.
    handle.strings_chunks = nullptr;
    SET_VECTOR_ELT(cache, kMade, R_NilValue);
    SET_VECTOR_ELT(cache, kChunkTable, R_NilValue);
  }
}

// The materialised vector, made from the strings made so far and the region
// (each string made once).
SEXP materialized(SEXP x, ViewHandle& handle) {
  if (handle.strings_full != nullptr) return VECTOR_ELT(R_altrep_data2(x), kFull);
  const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
  cache_of(x, handle);
  SEXP full = PROTECT(Rf_allocVector(STRSXP, n));
  if (handle.node.is_dictionary()) {
    for (R_xlen_t i = 0; i < n; ++i) SET_STRING_ELT(full, i, element(x, handle, i));
  } else {
    for (R_xlen_t i = 0; i < n; ++i) {
      const SEXP* chunk = handle.strings_chunks == nullptr ? nullptr
                                                          : handle.strings_chunks[i >> kChunkShift];
      SEXP s = chunk == nullptr ? R_BlankString : chunk[i & (kChunkSize - 1)];
      if (s == R_BlankString) s = string_from_region(handle, i);
      SET_STRING_ELT(full, i, s);
    }
  }
  set_full(x, handle, full);
  UNPROTECT(1);
  return full;
}

R_xlen_t string_length(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) handle = handle_for_length(x);
  return handle == nullptr ? 0 : static_cast<R_xlen_t>(handle->length());
}

SEXP string_elt(SEXP x, R_xlen_t i) { return element(x, usable_handle(x), i); }

// A string view of a writable share changes only as a private copy: its
// strings cannot change in the region. A copy that package code changes
// (rbind() of a data frame, replace()) becomes one, as a copy of a
// fixed-width vector does there; a change meant for the share is an error.
void string_set_elt(SEXP x, R_xlen_t i, SEXP value) {
  ViewHandle& handle = usable_handle(x);
  PROTECT(value);
  if (view_writes_through(handle) && handle.writable_copy != WritableCopy::Private) {
    if (!string_change_is_private(x, handle))
      Rf_error("shmr: character vectors of a writable share cannot be changed in place; "
               "only logical, integer, double, complex and raw vectors can");
    handle.writable_copy = WritableCopy::Private;
  }
  SEXP full = materialized(x, handle);
  handle.cache_written = true;
  SET_STRING_ELT(full, i, value);
  UNPROTECT(1);
}

// An order-sensitive 64-bit digest of a vector's element pointers (the
// rounds of xxHash64): a swap, a new string or an element written back to
// another place changes it. A copy of the pointers would be exact, but it
// would cost 8 bytes per element in every process that ordered the vector.
uint64_t fingerprint(const SEXP* elements, uint64_t count) noexcept {
  constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
  constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
  uint64_t digest = count * kPrime1;
  for (uint64_t i = 0; i < count; ++i) {
    digest ^= reinterpret_cast<uintptr_t>(elements[i]) * kPrime2;
    digest = ((digest << 31) | (digest >> 33)) * kPrime1;
  }
  return digest;
}

void* string_dataptr(SEXP x, Rboolean writable) {
  ViewHandle& handle = usable_handle(x);
  SEXP full = materialized(x, handle);
  if (writable && !handle.cache_written && !handle.strings_pointer_given) {
    // Marking the view written here would cost a vector that was only
    // ordered its name: it would then travel whole to every worker.
    handle.strings_fingerprint = fingerprint(handle.strings_full, handle.length());
    handle.strings_pointer_given = true;
  }
  return const_cast<SEXP*>(STRING_PTR_RO(full));
}

const void* string_dataptr_or_null(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || *handle->slow_path) return nullptr;
  return handle->strings_full;
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
  if (is_unavailable(x)) return unavailable_state(x);
  ViewHandle& handle = open_view_handle(x);
  if (strings_written(handle) || !handle.mapping->name_opens_here()) return nullptr;
  return view_serialized_state(handle);
}

SEXP string_unserialize(SEXP cls, SEXP state) { return view_from_serialized_state(cls, state); }

// An ordinary character vector of the view's elements (attributes are
// R's to copy).
SEXP ordinary_copy(SEXP x, ViewHandle& handle) { return Rf_duplicate(materialized(x, handle)); }

// A duplicate is a new view of the same node; when this one is materialised
// it starts with a copy of the materialised vector (a copy of pointers, as
// for an ordinary character vector), so nothing is read from the region
// again.
SEXP string_duplicate(SEXP x, Rboolean deep) {
  ViewHandle& handle = open_view_handle(x);
  if (strings_written(handle)) return nullptr;
  // A deep copy of a writable share is R's own, as for a fixed-width one
  // (duplicate_writable_view()): base R's C code rewrites the elements of
  // the copy it makes with duplicate() (format(), iconv(), enc2utf8(),
  // encodeString()), while the copies R changes for an assignment to a
  // variable are shallow, views whose change string_set_elt() decides.
  if (deep && view_writes_through(handle)) return ordinary_copy(x, handle);
  SEXP copy = fresh_view_of(handle);
  if (copy == nullptr) return nullptr;
  PROTECT(copy);
  if (view_writes_through(handle)) {
    // What it was copied from, for string_change_is_private() to find.
    ViewHandle* copied = own_handle(copy);
    copied->copied_from = x;
    copied->copied_from_serial = handle.serial;
  }
  SEXP full = full_vector(x);
  if (full == R_NilValue) {
    UNPROTECT(1);
    return copy;
  }
  SEXP copied = PROTECT(Rf_duplicate(full));
  set_full(copy, *own_handle(copy), copied);
  UNPROTECT(2);
  return copy;
}

// Position k (0-based) of the index R passes to Extract_subset, or -1 for
// NA and out of range, as R's own ExtractSubset reads it (d - 1 truncated;
// the bounds come first so the conversion is defined).
inline R_xlen_t position(int i, R_xlen_t n) { return 0 < i && i <= n ? i - 1 : -1; }
inline R_xlen_t position(double d, R_xlen_t n) {
  return R_FINITE(d) && d > 0 && d < static_cast<double>(n) + 1 ? static_cast<R_xlen_t>(d - 1) : -1;
}

// A subset this short, of a view that has made no string yet, makes its
// strings straight into the result, which holds them: setting up the cache
// (a table of chunks and a first chunk of kChunkSize strings, tens of
// kilobytes in a long vector) would cost more than the strings.
constexpr R_xlen_t kUncachedSubset = 16;

template <typename I>
void gather_strings(SEXP x, ViewHandle& handle, const I* p, R_xlen_t count, SEXP result) {
  const R_xlen_t n = static_cast<R_xlen_t>(handle.length());
  const bool uncached = !handle.strings_cached && count <= kUncachedSubset;
  const bool dictionary = handle.node.is_dictionary();
  for (R_xlen_t k = 0; k < count; ++k) {
    const R_xlen_t at = position(p[k], n);
    if (at < 0)
      SET_STRING_ELT(result, k, NA_STRING);
    else if (uncached)
      SET_STRING_ELT(result, k, string_from_region(handle, dictionary ? code_of(handle, at) : at));
    else
      SET_STRING_ELT(result, k, element(x, handle, at));
  }
}

// x[i]: the elements from the cache (made once), never one method call each.
SEXP string_extract_subset(SEXP x, SEXP index, SEXP) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || *handle->slow_path) return nullptr;
  if (TYPEOF(index) != INTSXP && TYPEOF(index) != REALSXP) return nullptr;
  const R_xlen_t count = XLENGTH(index);
  SEXP result = PROTECT(Rf_allocVector(STRSXP, count));
  if (TYPEOF(index) == INTSXP)
    gather_strings(x, *handle, INTEGER_RO(index), count, result);
  else
    gather_strings(x, *handle, REAL_RO(index), count, result);
  UNPROTECT(1);
  return result;
}

// ---- as.numeric(), as.integer() -----------------------------------------

// The number a string element reads as, the way R's own coercion of a
// character vector reads it (R_strtod, then only blanks may follow; a blank
// or missing string is NA). False when R's answer is not certain to be the
// same: non-ASCII bytes (R's blank test is then locale-dependent), a string
// too long for the buffer, or a string R would warn about (for as.integer(),
// R warns about every string that reads as NA or NaN, "NA" included).
bool number_of(const StringRef& s, bool for_integer, double& out) {
  if (s.encoding == format::StringEncoding::Missing) {
    out = NA_REAL;
    return true;
  }
  char text[128];
  if (s.size >= sizeof text) return false;
  bool blank = true;
  for (uint64_t i = 0; i < s.size; ++i) {
    const auto c = static_cast<unsigned char>(s.data[i]);
    if (c == 0 || c >= 0x80) return false;
    if (!std::isspace(c)) blank = false;
  }
  if (blank) {
    out = NA_REAL;
    return true;
  }
  std::memcpy(text, s.data, s.size);
  text[s.size] = '\0';
  char* end = nullptr;
  out = R_strtod(text, &end);
  for (; *end != '\0'; ++end)
    if (!std::isspace(static_cast<unsigned char>(*end))) return false;
  return !(for_integer && ISNAN(out));
}

// as.integer() takes what as.numeric() reads, when R would not warn.
bool integer_of(double d, int& out) {
  if (ISNAN(d) || d >= INT_MAX + 1. || d <= INT_MIN) return false;
  out = static_cast<int>(d);
  return true;
}

// Element i's number: a dictionary entry's is read once, into `entries`.
bool element_number(const ViewHandle& handle, uint64_t i, bool for_integer, double* entries,
                    double& out) {
  StringRef s{nullptr, 0, format::StringEncoding::Missing};
  if (!handle.node.is_dictionary())
    return handle.node.try_string_at(i, s) && number_of(s, for_integer, out);
  uint64_t k = 0;
  if (!handle.node.try_code(i, k)) return false;
  if (std::isnan(entries[k]) && !R_IsNA(entries[k])) {  // NaN (not NA) marks "not read yet"
    if (!handle.node.try_dictionary_entry(k, s) || !number_of(s, for_integer, entries[k]))
      return false;
    if (std::isnan(entries[k]) && !R_IsNA(entries[k])) return false;  // "NaN" itself: R's way
  }
  out = entries[k];
  return true;
}

// Numbers straight from the region's bytes: no R string is made for an
// element (R's own coercion makes each one first). Anything R would warn
// about, or treat differently, goes R's way (nullptr).
SEXP string_coerce(SEXP x, int type) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr || *handle->slow_path || strings_written(*handle) || Rf_isObject(x) ||
      (type != REALSXP && type != INTSXP))
    return nullptr;
  const R_xlen_t n = static_cast<R_xlen_t>(handle->length());
  SEXP out = PROTECT(Rf_allocVector(static_cast<SEXPTYPE>(type), n));
  SEXP entries = R_NilValue;
  if (handle->node.is_dictionary()) {
    entries = Rf_allocVector(REALSXP, static_cast<R_xlen_t>(handle->node.dictionary_size()));
    PROTECT(entries);
    for (R_xlen_t k = 0; k < XLENGTH(entries); ++k) REAL(entries)[k] = R_NaN;
  } else {
    PROTECT(entries);
  }
  double* table = entries == R_NilValue ? nullptr : REAL(entries);
  bool exact = true;
  double d = 0;
  if (type == REALSXP) {
    double* to = REAL(out);
    for (R_xlen_t i = 0; exact && i < n; ++i) {
      exact = element_number(*handle, static_cast<uint64_t>(i), false, table, d);
      to[i] = d;
    }
  } else {
    int* to = INTEGER(out);
    for (R_xlen_t i = 0; exact && i < n; ++i) {
      // NA here is a missing or blank string, which R reads as NA silently.
      exact = element_number(*handle, static_cast<uint64_t>(i), true, table, d);
      if (exact) exact = R_IsNA(d) ? (to[i] = NA_INTEGER, true) : integer_of(d, to[i]);
    }
  }
  if (exact) SHALLOW_DUPLICATE_ATTRIB(out, x);
  UNPROTECT(2);
  return exact ? out : nullptr;
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
  if (handle == nullptr || !strings_written(*handle) || R_altrep_data2(x) == R_NilValue)
    return R_NilValue;
  return full_vector(x);
}

bool strings_written(ViewHandle& handle) noexcept {
  if (handle.cache_written) return true;
  if (!handle.strings_pointer_given || handle.strings_full == nullptr) return false;
  if (fingerprint(handle.strings_full, handle.length()) == handle.strings_fingerprint) return false;
  handle.cache_written = true;
  return true;
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
  R_set_altrep_Coerce_method(string_cls, string_coerce);
  register_view_class(format::NodeKind::String, string_cls);
}

}  // namespace shmr::glue
