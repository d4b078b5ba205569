// Copies R makes of writable shares.
//
// R copies an object before changing it whenever the object may be referenced
// from more than one place, and it also copies for its own reasons: to change
// attributes (unclass(), names<-), or to get scratch space for a result
// (arithmetic may write its result into a temporary copy). An ALTREP class
// sees all of these as the same calls (Duplicate, then a writable data
// pointer), so a copy of a writable share starts out Pending: it reads the
// shared memory in place, and R may not reuse it as scratch space (the copy
// holds a reference to itself, so R never thinks it unreferenced). Only when
// R asks for a writable pointer does the copy find out what it is for, by
// looking for the variable R is assigning to (writable_copies.cpp):
// - the share's own variable in a script, with no other variable referring
//   to it: the copy becomes the share's new value and writes through; so
//   does the copy of an element of a list (a data frame's column) that a
//   script's complex assignment changes (`d$a[i] <- v`, `d[i, "a"] <- v`),
//   when only the list's variable holds the element;
// - a variable of package code (a function computing a new value), or no
//   variable at all (scratch space): an ordinary private copy;
// - a second variable, or a variable of a user's function (an argument): an
//   error, since the change would silently miss the shared memory.
// A copy that became a script variable's value unchanged (R copies a Date
// share to set its class at the end of its `[<-` method) is the share's
// value there too: the first read that asks for a writable pointer settles
// it as the share, not as a private copy.
//
// Once a copy is the share's new value, the objects it was copied from
// still stand for the old value, and R may read them while it writes
// (`w[o] <- w`, `m[4:1, ] <- m`): they become private copies at their next
// use, which comes before R's first write (ViewHandle::snapshot_due).
#pragma once

#include "r_api.h"

#include "view.h"

namespace shmr::glue {

// Duplicate method of a view that writes through (a writable share, or a
// copy of one). Returns nullptr when R's own copy will do.
SEXP duplicate_writable_view(SEXP x, ViewHandle& handle, Rboolean deep);

// Dataptr(writable = TRUE) of a Pending copy: settles what the copy is and
// returns its data pointer, or raises the R error for a change that would
// miss shared memory. `into_list` when R is putting the copy in a writable
// share's list at its own node's place (altrep_list.cpp): a second
// reference to it is then no wrapper's. Call only from a frame that owns no
// C++ object.
void* settle_writable_copy(SEXP x, ViewHandle& handle, bool into_list = false);

// Set_elt of a string view of a writable share, whose strings never change
// in the region: true when the change is one that package code (base R's
// rbind(), replace(), `is.na<-`) makes to a copy of its own, which then
// becomes an ordinary private vector, as a fixed-width copy would; false
// when it would be taken for a change to the share (a script's variable, a
// user's function), which cannot reach shared memory. Decided as a Pending
// copy's first write is. Call only from a frame that owns no C++ object.
bool string_change_is_private(SEXP x, ViewHandle& handle);

struct ListHandle;

// Set_elt of an unchanged list view of a writable share (R >= 4.3) given a
// value that is not the element as its region holds it: a whole element
// replaced (`l$a <- v`, `d[["a"]] <- v`), or one R made anew (a value of a
// wider type, a longer vector, new attributes). The region cannot take it,
// so the list would become a private one. Raises the R error that says so
// when the change is the script's change to the share (a complex
// assignment of script code to a variable holding the list); returns for
// a copy that package code or a user's function changes for a value of its
// own, which becomes a private list. Call only from a frame that owns no
// C++ object.
void refuse_element_replacement(SEXP list, const ListHandle& handle, R_xlen_t i);

// Coerce of an integer view with a class to double: raises the R error for
// a writable share that a Date, POSIXct or difftime `[<-` method running now
// would widen into a private vector of doubles (the method makes its values
// doubles). Call only from a frame that owns no C++ object.
void refuse_class_widening(SEXP x, const ViewHandle& handle);

// Makes a view whose snapshot is due a private copy of the elements it
// reads. Call only from a view class's method, from a frame that owns no
// C++ object (it allocates).
void take_snapshot(SEXP x, ViewHandle& handle);

}  // namespace shmr::glue
