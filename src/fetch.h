// fetch(): an ordinary in-memory deep copy with no ALTREP left anywhere.
#pragma once

#include <cstdint>

#include "r_api.h"

namespace shmr::glue {

// Environments and closures that fetch() replaces with copies (R/fetch.R
// decides which and makes the copies). Plain data: the entries live in a
// protected raw vector, sorted by address; `values` holds the replacements.
struct Replacements {
  struct Entry {
    uintptr_t address;
    R_xlen_t index;
  };
  const Entry* entries = nullptr;
  R_xlen_t count = 0;
  SEXP values = R_NilValue;
};

// R-only code (may raise R errors): call inside cpp11::unwind_protect.

// The replacements of `from[[i]]` by `to[[i]]` (two lists of equal
// length). The result points into `*storage`, a new raw vector the caller
// keeps protected while it is used.
Replacements replacements_of(SEXP from, SEXP to, SEXP* storage);

// The copy of `x`, with every environment or closure of `replacements`
// replaced, wherever a list, attribute, slot or pairlist holds it (and a
// call's attributes: a formula's environment).
SEXP fetch_copy(SEXP x, const Replacements& replacements);

// The copy of `x` with no replacement, and the environments and closures
// it holds outside environments (repeats included): list(copy, references).
SEXP fetch_copy_and_references(SEXP x);

// What fetch() of `x` meets without entering an environment: a list of
// `view` (whether `x` holds a shared object anywhere in its lists,
// attributes, slots and pairlists) and `references` (every environment and
// closure held there, repeats included).
SEXP fetch_reach(SEXP x);

}  // namespace shmr::glue
