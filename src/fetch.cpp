#include "fetch.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "attributes.h"
#include "list_registry.h"
#include "list_view.h"
#include "r_types.h"
#include "view.h"

namespace shmr::glue {
namespace {

size_t element_bytes(SEXPTYPE type) {
  switch (type) {
    case LGLSXP:
    case INTSXP:
      return sizeof(int);
    case REALSXP:
      return sizeof(double);
    case CPLXSXP:
      return sizeof(Rcomplex);
    case RAWSXP:
      return 1;
    default:
      return 0;
  }
}

bool needs_copy(SEXP value) {
  switch (TYPEOF(value)) {
    case LGLSXP:
    case INTSXP:
    case REALSXP:
    case CPLXSXP:
    case RAWSXP:
    case STRSXP:
    case VECSXP:
      return true;
    default:
      return false;
  }
}

// An S4 object that is not a vector keeps its slots as attributes, and a
// pairlist its elements in cells: neither is a vector to fill, so each is
// copied cell by cell and its parts fetched one by one (fetch_parts()). A
// call is copied for its attributes (a formula's environment) only: its
// cells hold code, and a call nested thousands deep (a formula of many
// terms) must not cost as many C frames.
bool has_parts(SEXP value) {
  return TYPEOF(value) == S4SXP || TYPEOF(value) == LISTSXP || TYPEOF(value) == LANGSXP;
}

bool is_reference(SEXP value) { return TYPEOF(value) == ENVSXP || TYPEOF(value) == CLOSXP; }

// A list that grows by doubling, held at a protect index.
struct GrowingList {
  SEXP items;
  PROTECT_INDEX index;
  R_xlen_t count = 0;
};

void append(GrowingList& list, SEXP value) {
  R_xlen_t capacity = XLENGTH(list.items);
  if (list.count == capacity) {
    SEXP bigger = Rf_allocVector(VECSXP, 2 * capacity);
    for (R_xlen_t i = 0; i < list.count; ++i) SET_VECTOR_ELT(bigger, i, VECTOR_ELT(list.items, i));
    REPROTECT(list.items = bigger, list.index);
  }
  SET_VECTOR_ELT(list.items, list.count++, value);
}

// A new list of the items appended so far.
SEXP items_of(const GrowingList& list) {
  SEXP out = Rf_allocVector(VECSXP, list.count);
  for (R_xlen_t i = 0; i < list.count; ++i) SET_VECTOR_ELT(out, i, VECTOR_ELT(list.items, i));
  return out;
}

// What a copy does with environments and closures: replace those of
// `replacements`, and, when `met` is set, record each one it meets.
struct Pass {
  const Replacements& replacements;
  GrowingList* met;
};

// The replacement of an environment or closure, or the value itself.
SEXP replaced(SEXP value, const Pass& pass) {
  if (!is_reference(value)) return value;
  if (pass.met != nullptr) append(*pass.met, value);
  const Replacements& replacements = pass.replacements;
  if (replacements.count == 0) return value;
  const auto key = reinterpret_cast<uintptr_t>(value);
  const Replacements::Entry* end = replacements.entries + replacements.count;
  const Replacements::Entry* found = std::lower_bound(
      replacements.entries, end, key,
      [](const Replacements::Entry& entry, uintptr_t k) { return entry.address < k; });
  if (found == end || found->address != key) return value;
  return VECTOR_ELT(replacements.values, found->index);
}

// What fetch_copy() copies: anything that may hold a view, and the
// environments and closures it replaces.
bool holds_views(SEXP value, const Pass& pass) {
  return needs_copy(value) || has_parts(value) ||
         ((pass.replacements.count != 0 || pass.met != nullptr) && is_reference(value));
}

SEXP copy_value(SEXP x, const Pass& pass);

// Lists are copied top-down: a list's copy is attached to its parent's copy
// (or is the result) before its elements are copied, so all that is
// allocated is reachable from the protected result. What is left to copy
// waits on a stack of (source, copy) pairs, a GrowingList: a nested list
// costs heap, never C stack, and these frames hold plain data only (an R
// error here skips no destructor).
void push(GrowingList& pending, SEXP source, SEXP copy) {
  append(pending, source);
  append(pending, copy);
}

// Replaces attribute values that may hold views with their fetched copies.
// Attribute values are copied whole before they are set (R checks some,
// such as row.names, as they are set); an object nested through its
// attributes is the rare case that recurses, and R_CheckStack() in
// copy_value() turns its depth into an R error.
void fetch_attributes(SEXP copy, const Pass& pass) {
  R_xlen_t count = 0;
  for_each_attribute(copy, [&](SEXP, SEXP value) { count += holds_views(value, pass) ? 1 : 0; });
  if (count == 0) return;
  SEXP pending = PROTECT(Rf_allocVector(VECSXP, 2 * count));
  R_xlen_t at = 0;
  for_each_attribute(copy, [&](SEXP tag, SEXP value) {
    if (!holds_views(value, pass)) return;
    SET_VECTOR_ELT(pending, at++, tag);
    SET_VECTOR_ELT(pending, at++, value);
  });
  for (R_xlen_t i = 0; i < count; ++i) {
    SEXP tag = VECTOR_ELT(pending, 2 * i);
    // dim is tiny and never a view; re-setting it would drop dimnames.
    if (tag == R_DimSymbol) continue;
    Rf_setAttrib(copy, tag, copy_value(VECTOR_ELT(pending, 2 * i + 1), pass));
  }
  UNPROTECT(1);
}

// Fills `copy` (allocated with the type and length of `source`); list
// elements to copy are allocated, attached, and left on `pending`.
void fill(SEXP source, SEXP copy, GrowingList& pending, const Pass& pass) {
  SEXPTYPE type = TYPEOF(source);
  R_xlen_t n = XLENGTH(source);
  if (type == STRSXP) {
    for (R_xlen_t i = 0; i < n; ++i) SET_STRING_ELT(copy, i, STRING_ELT(source, i));
  } else if (type == VECSXP) {
    for (R_xlen_t i = 0; i < n; ++i) {
      // An ALTREP list may make its element on demand: keep it protected.
      SEXP element = PROTECT(VECTOR_ELT(source, i));
      if (has_parts(element)) {
        SET_VECTOR_ELT(copy, i, copy_value(element, pass));
      } else if (needs_copy(element)) {
        SEXP element_copy = Rf_allocVector(TYPEOF(element), XLENGTH(element));
        SET_VECTOR_ELT(copy, i, element_copy);
        push(pending, element, element_copy);
      } else {
        SET_VECTOR_ELT(copy, i, replaced(element, pass));
      }
      UNPROTECT(1);
    }
  } else if (n > 0) {
    std::memcpy(writable_data(copy), DATAPTR_RO(source), static_cast<size_t>(n) * element_bytes(type));
  }
  SHALLOW_DUPLICATE_ATTRIB(copy, source);
  fetch_attributes(copy, pass);
}

// The rare case that recurses (an S4 object in a slot, a pairlist in a
// pairlist): R_CheckStack() in copy_value() turns its depth into an R error.
SEXP fetch_parts(SEXP x, const Pass& pass) {
  SEXP copy = PROTECT(Rf_shallow_duplicate(x));
  if (TYPEOF(copy) == LISTSXP)
    for (SEXP cell = copy; cell != R_NilValue; cell = CDR(cell))
      SETCAR(cell, copy_value(CAR(cell), pass));
  fetch_attributes(copy, pass);
  UNPROTECT(1);
  return copy;
}

SEXP copy_value(SEXP x, const Pass& pass) {
  if (is_reference(x)) return replaced(x, pass);
  if (!holds_views(x, pass)) return x;
  R_CheckStack();
  if (has_parts(x)) return fetch_parts(x, pass);
  SEXP result = PROTECT(Rf_allocVector(TYPEOF(x), XLENGTH(x)));
  GrowingList pending;
  PROTECT_WITH_INDEX(pending.items = Rf_allocVector(VECSXP, 64), &pending.index);
  fill(x, result, pending, pass);
  while (pending.count > 0) {
    pending.count -= 2;
    SEXP source = PROTECT(VECTOR_ELT(pending.items, pending.count));
    SEXP copy = VECTOR_ELT(pending.items, pending.count + 1);  // reachable from result
    fill(source, copy, pending, pass);
    UNPROTECT(1);
  }
  UNPROTECT(2);
  return result;
}

}  // namespace

SEXP fetch_copy(SEXP x, const Replacements& replacements) {
  return copy_value(x, Pass{replacements, nullptr});
}

SEXP fetch_copy_and_references(SEXP x) {
  GrowingList met;
  PROTECT_WITH_INDEX(met.items = Rf_allocVector(VECSXP, 16), &met.index);
  const Replacements none;
  SEXP copy = PROTECT(copy_value(x, Pass{none, &met}));
  SEXP references = PROTECT(items_of(met));
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(out, 0, copy);
  SET_VECTOR_ELT(out, 1, references);
  UNPROTECT(4);
  return out;
}

namespace {

bool reads_a_region(SEXP x) {
  // A shared list on R < 4.3 is an ordinary list, known by the registry.
  if (TYPEOF(x) == VECSXP && !ALTREP(x)) return find_list(x).mapping != nullptr;
  return ALTREP(x) && (view_handle(x) != nullptr || list_view_handle(x) != nullptr || is_unavailable(x));
}

}  // namespace

Replacements replacements_of(SEXP from, SEXP to, SEXP* storage) {
  const R_xlen_t n = XLENGTH(from);
  if (TYPEOF(from) != VECSXP || TYPEOF(to) != VECSXP || XLENGTH(to) != n)
    Rf_error("shmr: internal error: replacements must be two lists of equal length");
  *storage = Rf_allocVector(RAWSXP, static_cast<R_xlen_t>(sizeof(Replacements::Entry)) * n);
  auto* entries = reinterpret_cast<Replacements::Entry*>(RAW(*storage));
  for (R_xlen_t i = 0; i < n; ++i) {
    entries[i] = {reinterpret_cast<uintptr_t>(VECTOR_ELT(from, i)), i};
  }
  std::sort(entries, entries + n, [](const Replacements::Entry& a, const Replacements::Entry& b) {
    return a.address < b.address;
  });
  return Replacements{entries, n, to};
}

SEXP fetch_reach(SEXP x) {
  bool view = false;
  GrowingList references;
  PROTECT_WITH_INDEX(references.items = Rf_allocVector(VECSXP, 16), &references.index);
  // Values whose parts are still to look at: a stack on the heap, as in
  // fetch_copy(). A value without parts is looked at when it is met.
  GrowingList pending;
  PROTECT_WITH_INDEX(pending.items = Rf_allocVector(VECSXP, 64), &pending.index);
  auto meet = [&](SEXP value) {
    if (is_reference(value)) {
      append(references, value);
      return;
    }
    if (!view && reads_a_region(value)) view = true;
    bool has_attributes = false;
    for_each_attribute(value, [&](SEXP, SEXP) { has_attributes = true; });
    if (has_attributes || TYPEOF(value) == VECSXP || TYPEOF(value) == LISTSXP)
      append(pending, value);
  };
  meet(x);
  while (pending.count > 0) {
    SEXP value = PROTECT(VECTOR_ELT(pending.items, --pending.count));
    SET_VECTOR_ELT(pending.items, pending.count, R_NilValue);
    if (TYPEOF(value) == VECSXP) {
      const R_xlen_t n = XLENGTH(value);
      for (R_xlen_t i = 0; i < n; ++i) {
        // An ALTREP list makes its element on demand: keep it protected.
        SEXP element = PROTECT(VECTOR_ELT(value, i));
        meet(element);
        UNPROTECT(1);
      }
    } else if (TYPEOF(value) == LISTSXP) {
      for (SEXP cell = value; cell != R_NilValue; cell = CDR(cell)) meet(CAR(cell));
    }
    R_xlen_t attributes = 0;
    for_each_attribute(value, [&](SEXP, SEXP) { ++attributes; });
    if (attributes > 0) {
      SEXP values = PROTECT(Rf_allocVector(VECSXP, attributes));
      R_xlen_t at = 0;
      for_each_attribute(value, [&](SEXP, SEXP attribute) { SET_VECTOR_ELT(values, at++, attribute); });
      for (R_xlen_t i = 0; i < attributes; ++i) meet(VECTOR_ELT(values, i));
      UNPROTECT(1);
    }
    UNPROTECT(1);
  }
  SEXP found = PROTECT(items_of(references));
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(out, 0, Rf_ScalarLogical(view));
  SET_VECTOR_ELT(out, 1, found);
  SEXP labels = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(labels, 0, Rf_mkChar("view"));
  SET_STRING_ELT(labels, 1, Rf_mkChar("references"));
  Rf_setAttrib(out, R_NamesSymbol, labels);
  UNPROTECT(5);
  return out;
}

}  // namespace shmr::glue
