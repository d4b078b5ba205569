#include "writable_copies.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "list_view.h"
#include "r_boundary.h"

namespace shmr::glue {
namespace {

// The live views of writable regions (each knows its position).
std::vector<ViewHandle*> writable_views;

bool same_node(const ViewHandle& a, const ViewHandle& b) {
  return a.node.index() == b.node.index() &&
         a.mapping->region().name() == b.mapping->region().name();
}

// Always true: the slow-path flag of a view whose snapshot is due.
const bool kSnapshotDue = true;

void mark_for_snapshot(ViewHandle& handle) noexcept {
  handle.snapshot_due = true;
  handle.slow_path = &kSnapshotDue;
}

ViewHandle* tracked_view(uint64_t serial) {
  for (ViewHandle* view : writable_views)
    if (view->serial == serial) return view;
  return nullptr;
}

// R was handed a writable pointer into the shared elements for `writer`, a
// copy settled as the share's new value. The objects it was copied from,
// and R's other copies of those not yet settled, stand for the old value,
// and R may read them while it writes: `w[o] <- w` reads the old w element
// by element after asking for the pointer, and a Date's `[<-` method first
// unclasses the value (a copy). They are marked to become private copies at
// their next use, before R's first write (ViewHandle::snapshot_due). Any
// other object of the node (one map_shared() made, say) is the shared
// object and keeps reading it. Never raises.
void freeze_sources(ViewHandle& writer) {
  // The objects the writer was copied from, newest first (V -> C1 -> C2 for
  // a matrix): R reads the oldest as the assigned value. Each step is a live
  // view, so the walk ends within the number of views.
  std::vector<uint64_t> sources;
  uint64_t source = writer.copied_from_serial;
  for (size_t steps = 0; source != 0 && steps < writable_views.size(); ++steps) {
    ViewHandle* view = tracked_view(source);
    if (view == nullptr || view->holds_private_values() || !same_node(*view, writer)) break;
    mark_for_snapshot(*view);
    sources.push_back(source);
    source = view->copied_from_serial;
  }
  if (sources.empty()) return;
  for (ViewHandle* view : writable_views) {
    if (view == &writer || view->writable_copy != WritableCopy::Pending || view->snapshot_due ||
        std::find(sources.begin(), sources.end(), view->copied_from_serial) == sources.end())
      continue;
    mark_for_snapshot(*view);
  }
  // The last-view cache (altrep_vector.cpp) must not answer for them.
  views_changed();
}

}  // namespace

void track_writable_view(ViewHandle& handle) {
  writable_views.push_back(&handle);
  handle.tracked_at = writable_views.size() - 1;
}

void untrack_writable_view(ViewHandle& handle) noexcept {
  if (handle.tracked_at == ViewHandle::kUntracked) return;
  ViewHandle* last = writable_views.back();
  writable_views[handle.tracked_at] = last;
  last->tracked_at = handle.tracked_at;
  writable_views.pop_back();
  handle.tracked_at = ViewHandle::kUntracked;
}

namespace {

enum class Outcome { Shared, Private, ReadsInPlace, RefuseSecondVariable, RefuseInFunction, RefuseUnknown };

// True when `value` reads the same shared elements as `target` does.
bool reads_same_node(SEXP value, const ViewHandle& target) {
  const ViewHandle* other = view_handle(unwrapped(value));
  return other != nullptr && other->writable_copy != WritableCopy::Private &&
         same_node(*other, target);
}

// How deep, and over how many elements at most, a variable's list is
// searched for the shared elements: nested lists can be large.
constexpr int kListDepth = 8;
constexpr uint64_t kListElements = uint64_t{1} << 16;

// True when the List node `list` of `reader`, or a list inside it, has the
// node `wanted` among its elements. Throws Corrupt for a corrupt region.
bool node_holds(const RegionReader& reader, const NodeView& list, uint64_t wanted, int depth,
                uint64_t& budget) {
  for (uint64_t i = 0; i < list.length() && budget > 0; ++i, --budget) {
    const uint64_t child = list.child(i);
    if (child == wanted) return true;
    if (depth == 0) continue;
    const NodeView node = reader.node(child);
    if (node.kind() == format::NodeKind::List && node_holds(reader, node, wanted, depth - 1, budget))
      return true;
  }
  return false;
}

// An ordinary list or a pairlist: R changes an element of either through a
// complex assignment to its variable (a shared pairlist is one of views).
bool is_plain_list(SEXP list) {
  return (TYPEOF(list) == VECSXP && !ALTREP(list)) || TYPEOF(list) == LISTSXP;
}

// The elements of a list that is_plain_list(), in order.
class ListCursor {
 public:
  explicit ListCursor(SEXP list) : list_(list), cell_(list) {}
  bool done() const {
    return TYPEOF(list_) == VECSXP ? index_ >= XLENGTH(list_) : TYPEOF(cell_) != LISTSXP;
  }
  SEXP element() const { return TYPEOF(list_) == VECSXP ? VECTOR_ELT(list_, index_) : CAR(cell_); }
  void set(SEXP value) const {
    if (TYPEOF(list_) == VECSXP)
      SET_VECTOR_ELT(list_, index_, value);
    else
      SETCAR(cell_, value);
  }
  void next() {
    if (TYPEOF(list_) == VECSXP)
      ++index_;
    else
      cell_ = CDR(cell_);
  }

 private:
  SEXP list_;
  SEXP cell_;
  R_xlen_t index_ = 0;
};

bool holds(SEXP list, const ViewHandle& copy, int depth, uint64_t& budget) {
  // R wraps a list of 64 elements or more instead of copying it to change
  // its attributes (R >= 4.3): `[<-.data.frame`'s class(x) <- NULL.
  list = unwrapped(list);
  if (ListHandle* view = list_view_handle(list)) {
    if (!view->written) {
      if (view->mapping->region().name() != copy.mapping->region().name()) return false;
      try {
        return node_holds(view->mapping->reader(), view->node, copy.node.index(), depth, budget);
      } catch (...) {
        return false;  // a corrupt region: no element of it is this one
      }
    }
    list = list_view_decoded_elements(list);
  }
  if (!is_plain_list(list)) return false;
  for (ListCursor at(list); !at.done() && budget > 0; at.next(), --budget) {
    SEXP element = at.element();
    if (reads_same_node(element, copy)) return true;
    if (depth > 0 && is_plain_list(element) && holds(element, copy, depth - 1, budget)) return true;
  }
  return false;
}

// True when `list` holds the shared elements `copy` reads, itself or in a
// list inside it: an ordinary list with an element that reads them, or a
// list view of a list node that has them among its elements (whichever
// objects stand for them: a view of a list makes its elements' views anew
// when it is copied).
bool list_holds(SEXP list, const ViewHandle& copy) {
  uint64_t budget = kListElements;
  return holds(list, copy, kListDepth, budget);
}

struct Bindings {
  int targets = 0;  // variables R is assigning the copy to
  int others = 0;   // other variables reading the same shared elements
  int selves = 0;   // variables whose value is the copy itself
  int sources = 0;  // variables whose value is an object the copy was made from
  // Targets that are wrappers R may not change in place: referenced from
  // more than one place, R would copy such a wrapper before changing it.
  int shared_wrappers = 0;
  SEXP other = nullptr;  // the value of the last of those others
};

// The copy being decided. Plain data only: R errors may be raised while it
// lives.
struct Copy {
  SEXP object;
  const ViewHandle& handle;
  bool wrapped;
  // The objects it was copied from, through R's copies not yet settled:
  // byte code copies a shared value at the start of an assignment, and a
  // replacement method (`[<-.Date`) then has R copy that copy again.
  static constexpr int kMaxSources = 8;
  const void* sources[kMaxSources] = {};
  int source_count = 0;

  Copy(SEXP x, const ViewHandle& h, bool w) : object(x), handle(h), wrapped(w) {
    const ViewHandle* step = &handle;
    while (step != nullptr && step->copied_from != nullptr && source_count < kMaxSources) {
      sources[source_count++] = step->copied_from;
      step = step->copied_from_serial == 0 ? nullptr : tracked_view(step->copied_from_serial);
      if (step != nullptr && step->writable_copy != WritableCopy::Pending) break;
    }
  }
  bool is_source(SEXP value) const {
    for (int i = 0; i < source_count; ++i)
      if (static_cast<const void*>(value) == sources[i]) return true;
    return false;
  }
};

// A copy R writes into right after making it (do_subassign, or byte code's
// start of an assignment) is about to become the value of the variable that
// holds the object it was copied from. A copy R writes into through one of
// its wrappers belongs to the variable bound to that wrapper (a complex
// assignment wraps large vectors first); a wrapper nobody is bound to is
// scratch space.
bool is_target(SEXP value, const Copy& copy) {
  if (copy.wrapped) return ALTREP(value) && !is_view(value) && R_altrep_data1(value) == copy.object;
  return copy.is_source(value);
}

Bindings scan(SEXP env, const Copy& copy) {
  const ViewHandle& handle = copy.handle;
  Bindings found;
  // R's temporary variable of a complex assignment holds what is assigned.
  SEXP temporary = Rf_install("*tmp*");
  SEXP names = PROTECT(R_lsInternal3(env, TRUE, FALSE));
  for (R_xlen_t i = 0; i < XLENGTH(names); ++i) {
    SEXP symbol = Rf_installChar(STRING_ELT(names, i));
    // Reading an active binding or a promise would run code.
    if (symbol == temporary || R_BindingIsActive(symbol, env)) continue;
    SEXP value = Rf_findVarInFrame(env, symbol);
    if (value == R_UnboundValue || TYPEOF(value) == PROMSXP) continue;
    if (copy.is_source(unwrapped(value))) ++found.sources;
    if (value == copy.object) {
      ++found.selves;
    } else if (is_target(value, copy)) {
      ++found.targets;
      if (copy.wrapped && MAYBE_SHARED(value)) ++found.shared_wrappers;
    } else if (reads_same_node(value, handle) || list_holds(value, handle)) {
      ++found.others;
      found.other = value;
    }
  }
  UNPROTECT(1);
  return found;
}

// Whether a variable of user code (a script or a user's function) in an
// environment other than `chosen` holds the shared elements: a write through
// the share would change its value too. local() and within() assign in an
// environment of their own, which gets a copy of the outer variable's value
// (R's EnsureLocal(), or the columns of within()'s data frame); package code
// keeps values for itself (source() its last one) and is not asked.
bool held_elsewhere(SEXP envs, SEXP kinds, R_xlen_t chosen, const Copy& copy) {
  SEXP chosen_env = VECTOR_ELT(envs, chosen);
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    SEXP env = VECTOR_ELT(envs, i);
    // eval() in the global environment lists that environment twice.
    if (env == chosen_env || std::strcmp(CHAR(STRING_ELT(kinds, i)), "package") == 0) continue;
    bool seen_before = false;
    for (R_xlen_t j = 0; j < i && !seen_before; ++j) seen_before = VECTOR_ELT(envs, j) == env;
    if (seen_before) continue;
    const Bindings bindings = scan(env, copy);
    if (bindings.targets + bindings.others > 0) return true;
  }
  return false;
}

// The value of shmr:::<name>(argument) (R/writable.R), or of
// shmr:::<name>() without `argument`; `helper` keeps the function found the
// first time.
SEXP call_helper(const char* name, SEXP& helper, SEXP argument = nullptr) {
  if (helper == nullptr) {
    SEXP ns = PROTECT(R_FindNamespace(Rf_mkString("shmr")));
    helper = Rf_findFun(Rf_install(name), ns);
    R_PreserveObject(helper);
    UNPROTECT(1);
  }
  SEXP call = PROTECT(argument == nullptr ? Rf_lang1(helper) : Rf_lang2(helper, argument));
  SEXP found = Rf_eval(call, R_GlobalEnv);
  UNPROTECT(1);
  return found;
}

// shmr:::writer_environments(): the environments of the running code,
// innermost first, the kind of code that runs in each, whether each is a
// replacement function's that a complex assignment called, and the
// environment each was called from.
SEXP writer_environments() {
  static SEXP helper = nullptr;
  return call_helper("writer_environments", helper);
}


// What a copy settles as when it is for a variable of code of `kind`: in
// package code (a function computing a new value), a private copy; in a
// user's function, a refusal; in a script, the share's new value when that
// variable is the only one holding the shared elements.
Outcome outcome_for(const char* kind, bool only_holder) {
  if (std::strcmp(kind, "package") == 0) return Outcome::Private;
  if (std::strcmp(kind, "function") == 0) return Outcome::RefuseInFunction;
  return only_holder ? Outcome::Shared : Outcome::RefuseSecondVariable;
}

// outcome_for() the copy's variable in environment `chosen`, where it is the
// only holder there, checked against the other environments' variables.
Outcome outcome_in(SEXP envs, SEXP kinds, R_xlen_t chosen, bool only_holder, const Copy& copy) {
  Outcome outcome = outcome_for(CHAR(STRING_ELT(kinds, chosen)), only_holder);
  if (outcome == Outcome::Shared && held_elsewhere(envs, kinds, chosen, copy))
    return Outcome::RefuseSecondVariable;
  return outcome;
}

// ENCLOS() is not part of R's API from R 4.5 on.
SEXP enclosing(SEXP env) {
#if R_VERSION >= R_Version(4, 5, 0)
  return R_ParentEnv(env);
#else
  return ENCLOS(env);
#endif
}

// `l$v[i] <<- x` keeps its `*tmp*` in the frame it runs in, and assigns
// the variable of the nearest enclosing environment that has one. Returns
// the position in `envs` of the enclosing environment of `env` whose
// variable holds the copy's shared elements, or -1 when none of the running
// code's environments does.
R_xlen_t superassigned_in(SEXP envs, SEXP env, const Copy& copy) {
  for (SEXP outer = enclosing(env); outer != R_EmptyEnv; outer = enclosing(outer)) {
    for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
      if (VECTOR_ELT(envs, i) != outer) continue;
      if (scan(outer, copy).others > 0) return i;
      break;
    }
  }
  return -1;
}

// A copy of an element of a list (a data frame's column) that no variable
// holds: R changes an element in a complex assignment to the list
// (`d$a[i] <- v`, `d[i, "a"] <- v` through `[<-.data.frame`), whose result
// becomes the value of the list's variable. The copy then belongs to that
// variable, as a vector's copy does to its own. The assignment is the
// innermost one whose `*tmp*` holds the list (or, nested, as in
// `d[["a"]][i] <- v`, the element itself), past those that replacement
// functions it called make of their own (`x[[j]][i] <- v` in
// `[<-.data.frame`). Byte code (a loop at top level) keeps no `*tmp*`: then
// the script's variable that alone holds the element is the one assigned.
// RefuseUnknown when no assignment or script variable holds the element.
// `holder` is set to the value assigned: the list (or the element) before
// the change.
Outcome list_element_outcome(const Copy& copy, SEXP envs, SEXP kinds, SEXP replacing,
                             SEXP& holder, bool assignments_only = false) {
  const ViewHandle& handle = copy.handle;
  SEXP temporary = Rf_install("*tmp*");
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    SEXP env = VECTOR_ELT(envs, i);
    SEXP assigned = Rf_findVarInFrame(env, temporary);
    if (assigned == R_UnboundValue || TYPEOF(assigned) == PROMSXP ||
        !(reads_same_node(assigned, handle) || list_holds(assigned, handle)) ||
        LOGICAL(replacing)[i] == TRUE)
      continue;
    // No variable is bound to the copy's source (decide() found no target
    // anywhere): every variable holding the element counts as another.
    holder = assigned;
    const Bindings bindings = scan(env, copy);
    if (bindings.others == 0) {
      const R_xlen_t outer = superassigned_in(envs, env, copy);
      if (outer >= 0)
        return outcome_in(envs, kinds, outer, scan(VECTOR_ELT(envs, outer), copy).others == 1, copy);
    }
    return outcome_in(envs, kinds, i, bindings.others == 1, copy);
  }
  if (assignments_only) return Outcome::RefuseUnknown;
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    if (std::strcmp(CHAR(STRING_ELT(kinds, i)), "script") != 0) continue;
    const Bindings bindings = scan(VECTOR_ELT(envs, i), copy);
    if (bindings.others == 0) continue;
    if (bindings.others > 1) return Outcome::RefuseSecondVariable;
    holder = bindings.other;
    return outcome_in(envs, kinds, i, true, copy);
  }
  return Outcome::RefuseUnknown;
}

// Puts `source` where the ordinary list `list`, or a list inside it down to
// `depth` levels, holds `copy`. True when it did.
bool put_back(SEXP list, SEXP copy, SEXP source, int depth) {
  if (!is_plain_list(list)) return false;
  for (ListCursor at(list); !at.done(); at.next()) {
    SEXP element = at.element();
    if (element == copy) {
      at.set(source);
      return true;
    }
    if (depth > 0 && put_back(element, copy, source, depth - 1)) return true;
  }
  return false;
}

// A copy referenced twice that no variable's wrapper holds, on R < 4.3: R's
// recursive `[[<-` (`l[[c(1, 2)]] <- v`) on a list another variable also
// holds copies the list, puts its copy of the element there (a second
// reference, as a wrapper's) and writes into it (and so does R after a
// second variable that held the list went: the list it held keeps the
// element referenced until it is collected). When a complex assignment
// changes a list holding the element, the copy is decided as the copy of
// `l[[1]][2] <- v` is; with no such assignment it is scratch space
// (Private), as before.
// On a refusal, R has bound the variable to its copy of the list already
// (EnsureLocal()), holding the copy: the element it was copied from is put
// back there, so the list holds the share's element again instead of a
// copy that each later read would have to settle (and refuse).
Outcome copy_in_list_copy_outcome(const Copy& copy, SEXP envs, SEXP kinds, SEXP replacing,
                                  SEXP& holder) {
  const Outcome outcome = list_element_outcome(copy, envs, kinds, replacing, holder, true);
  if (outcome == Outcome::Shared) return outcome;
  if (outcome != Outcome::RefuseSecondVariable && outcome != Outcome::RefuseInFunction)
    return Outcome::Private;
  const ViewHandle& handle = copy.handle;
  if (handle.copied_from != nullptr && tracked_view(handle.copied_from_serial) != nullptr)
    put_back(holder, copy.object, static_cast<SEXP>(const_cast<void*>(handle.copied_from)), kListDepth);
  return outcome;
}

// What the copy `copy` settles as; `holder` is set as list_element_outcome()
// sets it, when that decides; `into_list` as for settle_writable_copy().
Outcome decide(SEXP copy, const ViewHandle& handle, SEXP& holder, bool into_list) {
  // A buffer changes only through its `[<-` method, which writes to the
  // region whatever object it is given: anything else is R's own business.
  if (is_buffer_region(handle.mapping->reader())) return Outcome::Private;
  // The copy holds one reference to itself: a second one is R's wrapper or
  // a variable, and R writes into such a copy only through a wrapper. A
  // copy R puts in a list is no wrapper's, whatever else refers to it (the
  // variable of a function that returned it, such as .POSIXct()'s `xx`,
  // which R does not always release).
  const bool wrapped = MAYBE_SHARED(copy) && !into_list;
  const Copy context(copy, handle, wrapped);
  SEXP found = PROTECT(writer_environments());
  SEXP envs = VECTOR_ELT(found, 0);
  SEXP kinds = VECTOR_ELT(found, 1);
  Outcome outcome = wrapped ? Outcome::Private : Outcome::RefuseUnknown;
  bool targeted = false;
  bool bound_in_script = false;  // a script's variable is bound to the copy itself
  // A variable of user code holds what the copy was made from, or another
  // object of its elements (a data frame holding the column it copies).
  bool source_held = false;
  SEXP replacing = VECTOR_ELT(found, 2);
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    Bindings bindings = scan(VECTOR_ELT(envs, i), context);
    // A replacement function that a complex assignment called on a list
    // holding the element (`[<-.data.frame` for `d[o, "a"] <- d$a`) binds
    // the source as the value it assigns, not as what it changes: the copy
    // is the list's element, decided as such below.
    if (bindings.targets > 0 && !wrapped && LOGICAL(replacing)[i] == TRUE && bindings.others > 0)
      continue;
    if (bindings.targets == 0) {
      const char* kind = CHAR(STRING_ELT(kinds, i));
      bound_in_script = bound_in_script || (bindings.selves > 0 && std::strcmp(kind, "script") == 0);
      source_held = source_held || ((bindings.sources > 0 || bindings.others > 0) &&
                                    std::strcmp(kind, "package") != 0);
      continue;
    }
    targeted = true;
    // R asks a wrapper for a writable pointer to read too (REAL() in `==`,
    // identical()), and changes a wrapper in place only when nothing else
    // refers to it (it copies one that two variables hold, `b <- u` after
    // `names(u)[1] <- "a"`): through a shared wrapper the request is a
    // read, which must neither refuse nor reach the shared memory.
    outcome = bindings.shared_wrappers > 0
                  ? Outcome::Private
                  : outcome_in(envs, kinds, i, bindings.targets == 1 && bindings.others == 0, context);
    break;
  }
  // R copied the share for a reason of its own (`class<-` at the end of a
  // Date's `[<-` method) and the copy became a script variable's value
  // unchanged: it is the share's value there. Settling it as a private copy
  // at its first read (format() asks for a writable pointer) would make
  // every later write miss the shared memory. The request is a read: R
  // writes into a copy bound to a variable only after copying it again
  // (the copy references itself), and that copy is decided on its own.
  // While another variable still holds the object it was copied from
  // (`y <- w; names(y) <- n`, then sort(y); or a data frame `w` its column,
  // `y <- w$a; names(y) <- n`), the copy is neither: as the
  // share it would turn that object into a private copy (freeze_sources()),
  // whose later writes would silently miss shared memory; as a private
  // copy, a write to it would silently do the same. It goes on reading the
  // shared memory, and a change R makes to it is refused as a second
  // variable's.
  if (!targeted && bound_in_script)
    outcome = source_held && !into_list ? Outcome::ReadsInPlace : Outcome::Shared;
  else if (!targeted && !wrapped)
    outcome = list_element_outcome(context, envs, kinds, replacing, holder);
  else if (!targeted && !have_list_views())
    outcome = copy_in_list_copy_outcome(context, envs, kinds, replacing, holder);
  UNPROTECT(1);
  return outcome;
}

[[noreturn]] void refuse(const ViewHandle& handle, Outcome outcome) {
  const char* reason =
      outcome == Outcome::RefuseInFunction
          ? "inside a function you wrote, a copy R changes may be of an argument or of a "
            "variable referenced elsewhere, which must keep its value, so shmr writes no copy "
            "through there (a variable of the function's own included). Make such a change at "
            "top level; for output that functions (and pool workers) write into, use "
            "shared_buffer(); for a private copy, use fetch()."
      : outcome == Outcome::RefuseSecondVariable
          ? "another variable refers to the same object (here, or outside the local() or "
            "within() that changes it), and R copies an object before changing it when it is "
            "referenced from more than one place. Change it through a single variable, or use "
            "fetch() for a private copy."
          : "R copies an object before changing it when it is referenced from more than one "
            "place (a list, another variable, a function argument). Change it through a single "
            "variable, use shared_buffer() for output written from functions, or fetch() for a "
            "private copy.";
  ErrorMessage message;
  std::snprintf(message.text, sizeof message.text,
                "shmr: this change to the writable shared object '%s' would go to a private "
                "copy, not to shared memory: %s",
                handle.mapping->region().name().c_str(), reason);
  raise_r_error(message);
}

// Room for a helper's reason: short enough that the message around it
// always fits in an ErrorMessage.
constexpr size_t kReasonSize = 512;

// Whether the R helper `name` given `argument` refuses a change: it then
// returns the reason (a string), copied into `why`.
bool helper_gives_reason(const char* name, SEXP& helper, SEXP argument, char* why, size_t size) {
  SEXP reason = PROTECT(call_helper(name, helper, argument));
  const bool given = TYPEOF(reason) == STRSXP && XLENGTH(reason) == 1;
  if (given) std::snprintf(why, size, "%s", CHAR(STRING_ELT(reason, 0)));
  UNPROTECT(1);
  return given;
}

// A data frame's `[<-` method changes the columns it is given one after
// another, so a column that cannot change in place (a character vector) or
// that its class changes in a copy of its own (a factor) would fail or go
// private only after the columns before it reached shared memory. The first
// write through is the last moment at which nothing has changed yet: the
// whole change is refused there (shmr:::partial_change_refusal(), given
// the object assigned before the change, where the columns' first values
// are, or NULL). `helper_name` names the R helper that gives the reason,
// `helper` keeps it.
void refuse_partial_change(const std::string& region, SEXP holder, const char* helper_name,
                           SEXP& helper) {
  char why[kReasonSize];
  if (!helper_gives_reason(helper_name, helper, holder, why, sizeof why)) return;
  ErrorMessage message;
  std::snprintf(message.text, sizeof message.text,
                "shmr: this change to the writable shared object '%s' would reach shared memory "
                "for some of the columns it changes and not for %s, so nothing was changed. "
                "Change the other columns on their own (w[i, c(\"a\", \"b\")] <- v), or use "
                "fetch() for a private copy.",
                region.c_str(), why);
  raise_r_error(message);
}

void refuse_partial_change(const ViewHandle& handle, SEXP holder) {
  static SEXP helper = nullptr;
  refuse_partial_change(handle.mapping->region().name(), holder, "partial_change_refusal", helper);
}

void* writable_pointer(SEXP x) {
  switch (TYPEOF(x)) {
    case LGLSXP: return LOGICAL(x);
    case INTSXP: return INTEGER(x);
    case REALSXP: return REAL(x);
    case CPLXSXP: return COMPLEX(x);
    case RAWSXP: return RAW(x);
    default: return nullptr;
  }
}

SEXP private_copy(SEXP x, const ViewHandle& handle) {
  SEXP copy = Rf_allocVector(TYPEOF(x), static_cast<R_xlen_t>(handle.length()));
  if (handle.data_size() != 0) std::memcpy(writable_pointer(copy), handle.data(), handle.data_size());
  return copy;
}

// Makes the view read a private copy of its elements, kept in data2;
// returns the copy's data pointer.
void* make_private(SEXP x, ViewHandle& handle) {
  SEXP data = PROTECT(private_copy(x, handle));
  R_set_altrep_data2(x, data);
  void* pointer = writable_pointer(data);
  handle.use_private_data(pointer);
  handle.writable_copy = WritableCopy::Private;
  UNPROTECT(1);
  return pointer;
}

// True when `value`, a variable's or a complex assignment's, is the list
// view `list`, or holds the list node `target` reads: a list view of that
// node or of a list node holding it, or an ordinary list with one of those
// inside it (a list view of a changed list holds its elements itself).
bool holds_list_node(SEXP value, SEXP list, const ListHandle& target, int depth,
                     uint64_t& budget) {
  value = unwrapped(value);
  if (value == list) return true;
  if (const ListHandle* view = list_view_handle(value)) {
    if (!view->written) {
      if (view->mapping->region().name() != target.mapping->region().name()) return false;
      if (view->node.index() == target.node.index()) return true;
      try {
        return node_holds(view->mapping->reader(), view->node, target.node.index(), depth, budget);
      } catch (...) {
        return false;  // a corrupt region: no list of it is this one
      }
    }
    value = list_view_decoded_elements(value);
  }
  if (!is_plain_list(value)) return false;
  for (ListCursor at(value); !at.done() && budget > 0; at.next(), --budget) {
    SEXP element = at.element();
    if (element == R_NilValue || depth == 0) continue;
    if (holds_list_node(element, list, target, depth - 1, budget)) return true;
  }
  return false;
}

bool list_node_held(SEXP value, SEXP list, const ListHandle& target) {
  if (value == R_UnboundValue || TYPEOF(value) == PROMSXP) return false;
  uint64_t budget = kListElements;
  return holds_list_node(value, list, target, kListDepth, budget);
}

// Whether a variable of `env` (`*tmp*` included, when `with_temporary`)
// holds the list node `target` reads; with `only_itself`, whether one is
// bound to `list` itself.
bool env_holds_list(SEXP env, SEXP list, const ListHandle& target, bool with_temporary,
                    bool only_itself) {
  SEXP temporary = Rf_install("*tmp*");
  SEXP names = PROTECT(R_lsInternal3(env, TRUE, FALSE));
  bool held = false;
  for (R_xlen_t i = 0; i < XLENGTH(names) && !held; ++i) {
    SEXP symbol = Rf_installChar(STRING_ELT(names, i));
    // Reading an active binding or a promise would run code.
    if ((symbol == temporary && !with_temporary) || R_BindingIsActive(symbol, env)) continue;
    SEXP value = Rf_findVarInFrame(env, symbol);
    held = only_itself ? unwrapped(value) == list : list_node_held(value, list, target);
  }
  UNPROTECT(1);
  return held;
}

// The position in `envs` of `env`, or -1.
R_xlen_t position_of(SEXP envs, SEXP env) {
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i)
    if (VECTOR_ELT(envs, i) == env) return i;
  return -1;
}

// Whether the Set_elt of `list` running now is script code's complex
// assignment changing a variable that holds the share's list. A replacement
// function such as `$<-.data.frame` changes a copy of the list it is given
// (its `x`), for the assignment that called it: the code it was called
// from decides. Otherwise R's own `$<-`, `[[<-` or `[<-` changes the list
// of the innermost complex assignment whose `*tmp*` holds it (for `<<-`,
// the enclosing environment's variable); byte code (a loop at top level)
// keeps no `*tmp*`, and changes in place the list a variable is bound to.
// Package code and a user's function change copies of their own, for
// values of their own (transform(), modifyList(), a function changing its
// argument): R's semantics, not the share's.
bool is_script_change_of_share(SEXP list, const ListHandle& handle, SEXP envs, SEXP kinds,
                               SEXP replacing, SEXP callers) {
  SEXP temporary = Rf_install("*tmp*");
  auto is_script = [&](R_xlen_t i) {
    return std::strcmp(CHAR(STRING_ELT(kinds, i)), "script") == 0;
  };
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    if (LOGICAL(replacing)[i] != TRUE) continue;
    SEXP caller = VECTOR_ELT(callers, i);
    const R_xlen_t at = position_of(envs, caller);
    return at >= 0 && is_script(at) && env_holds_list(caller, list, handle, true, false);
  }
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    SEXP env = VECTOR_ELT(envs, i);
    if (!list_node_held(Rf_findVarInFrame(env, temporary), list, handle)) continue;
    if (is_script(i) || env_holds_list(env, list, handle, false, false)) return is_script(i);
    // No variable of its own holds the list: `l$a <<- v`, which keeps its
    // `*tmp*` where it runs and assigns the nearest enclosing variable.
    for (SEXP outer = enclosing(env); outer != R_EmptyEnv; outer = enclosing(outer)) {
      const R_xlen_t at = position_of(envs, outer);
      if (at >= 0 && env_holds_list(outer, list, handle, false, false)) return is_script(at);
    }
    return false;
  }
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i)
    if (is_script(i) && env_holds_list(VECTOR_ELT(envs, i), list, handle, false, true)) return true;
  return false;
}

// True when `value` is `x` itself, or an ordinary list (or a list inside it,
// down to `depth` levels) has `x` among its elements.
bool holds_itself(SEXP value, SEXP x, int depth, uint64_t& budget) {
  if (value == x) return true;
  if (depth < 0 || !is_plain_list(value)) return false;
  for (ListCursor at(value); !at.done() && budget > 0; at.next(), --budget)
    if (holds_itself(at.element(), x, depth - 1, budget)) return true;
  return false;
}

// Whether a variable of `env` holds `x` itself (bound to it, or in a list);
// with `into_environments`, also a variable of an environment that one of
// `env`'s variables is bound to (`e$x`, an R6 object's field).
bool env_holds_itself(SEXP env, SEXP x, bool into_environments, uint64_t& budget) {
  SEXP names = PROTECT(R_lsInternal3(env, TRUE, FALSE));
  bool held = false;
  for (R_xlen_t i = 0; i < XLENGTH(names) && !held && budget > 0; ++i, --budget) {
    SEXP symbol = Rf_installChar(STRING_ELT(names, i));
    // Reading an active binding or a promise would run code.
    if (R_BindingIsActive(symbol, env)) continue;
    SEXP value = Rf_findVarInFrame(env, symbol);
    if (value == R_UnboundValue || TYPEOF(value) == PROMSXP) continue;
    if (TYPEOF(value) == ENVSXP) {
      held = into_environments && value != env && value != R_GlobalEnv &&
             !R_IsNamespaceEnv(value) && !R_IsPackageEnv(value) &&
             env_holds_itself(value, x, false, budget);
    } else {
      held = holds_itself(value, x, kListDepth, budget);
    }
  }
  UNPROTECT(1);
  return held;
}

// Whether a variable of the running code (or of the global environment)
// holds `x` itself: bound to it, or in a list or an environment it is bound
// to. R's wrapper of `x` (unclass() of a long buffer) is not `x`.
bool held_by_variable(SEXP x) {
  SEXP found = PROTECT(writer_environments());
  SEXP envs = VECTOR_ELT(found, 0);
  uint64_t budget = kListElements;
  bool held = false;
  for (R_xlen_t i = 0; i < XLENGTH(envs) && !held; ++i)
    held = env_holds_itself(VECTOR_ELT(envs, i), x, true, budget);
  UNPROTECT(1);
  return held;
}

}  // namespace

SEXP duplicate_writable_view(SEXP x, ViewHandle& handle, Rboolean deep) {
  if (handle.writable_copy == WritableCopy::Private) return nullptr;
  // sort(), rev() and their kind copy deeply: an ordinary private vector.
  // Not a buffer's copy: `comment<-` and `levels<-` copy deeply too, and
  // their result, still of class shmr_buffer, is the buffer
  // (settle_writable_copy() makes a copy R sorts into scratch space).
  if (deep && !is_buffer_region(handle.mapping->reader())) return private_copy(x, handle);
  SEXP copy = PROTECT(make_view(handle.mapping, handle.node));
  ViewHandle* copied = view_handle(copy);
  copied->writable_copy = WritableCopy::Pending;
  copied->copied_from = x;
  copied->copied_from_serial = handle.serial;
  // A reference R counts, so R never takes the copy for unreferenced
  // scratch space (nor writes into it before asking for a copy of it).
  R_set_altrep_data2(copy, copy);
  UNPROTECT(1);
  return copy;
}

void* settle_writable_copy(SEXP x, ViewHandle& handle, bool into_list) {
  // R copies a buffer to change its attributes (`names<-`, `dim<-`, `attr<-`
  // on a variable also held elsewhere, which a buffer always is: it
  // references itself), and the copy, still of class shmr_buffer, becomes
  // the variable's value (or a list's element, `attr(l$x, "u") <- v`): it
  // is the buffer. Settled as a private copy at
  // its first read that asks for a writable pointer (c(), rep(), format()),
  // it would silently stop being the buffer: later writes would fail or
  // miss shared memory. It stays pinned (data2), and the objects it was
  // copied from, the same buffer, stay shared too. Only a copy a variable
  // holds: R's wrapper (unclass() of a long buffer) copies the buffer
  // it wraps when it is asked for a pointer to write a result into, and that
  // copy is scratch space (private).
  if (is_buffer_region(handle.mapping->reader()) && Rf_inherits(x, "shmr_buffer") &&
      held_by_variable(x)) {
    handle.writable_copy = WritableCopy::Shared;
    handle.copied_from = nullptr;
    handle.copied_from_serial = 0;
    return const_cast<void*>(handle.data());
  }
  SEXP holder = R_NilValue;
  Outcome outcome = decide(x, handle, holder, into_list);
  if (outcome == Outcome::Shared) {
    refuse_partial_change(handle, holder);
    handle.writable_copy = WritableCopy::Shared;
    R_set_altrep_data2(x, R_NilValue);  // from now on it is the share itself
    freeze_sources(handle);
    // The objects before it are values of their own from now on.
    handle.copied_from = nullptr;
    handle.copied_from_serial = 0;
    return const_cast<void*>(handle.data());
  }
  if (outcome == Outcome::ReadsInPlace) {
    // Decided once: R asks such a copy again at each read.
    handle.reads_in_place = true;
    return const_cast<void*>(handle.data());
  }
  if (outcome != Outcome::Private) refuse(handle, outcome);
  return make_private(x, handle);
}

bool string_change_is_private(SEXP x, ViewHandle& handle) {
  // A copy that a variable of package code holds itself (R's EnsureLocal()
  // gave replace()'s or `is.na<-`'s `x` the copy, which it then changes):
  // that function computes a new value. A fixed-width copy is copied once
  // more there (it references itself) and so decided below; a string copy
  // is not.
  const Copy context(x, handle, false);
  SEXP found = PROTECT(writer_environments());
  SEXP envs = VECTOR_ELT(found, 0);
  SEXP kinds = VECTOR_ELT(found, 1);
  bool own = false;
  for (R_xlen_t i = 0; i < XLENGTH(envs); ++i) {
    const Bindings bindings = scan(VECTOR_ELT(envs, i), context);
    if (bindings.selves == 0 && bindings.targets == 0) continue;
    own = bindings.selves > 0 && std::strcmp(CHAR(STRING_ELT(kinds, i)), "package") == 0;
    break;
  }
  UNPROTECT(1);
  if (own) return true;
  SEXP holder = R_NilValue;
  return decide(x, handle, holder, false) == Outcome::Private;
}

void refuse_class_widening(SEXP x, const ViewHandle& handle) {
  if (!view_writes_through(handle) || handle.holds_private_values() ||
      is_buffer_region(handle.mapping->reader()))
    return;
  static SEXP helper = nullptr;
  char why[kReasonSize];
  if (!helper_gives_reason("class_widening_refusal", helper, x, why, sizeof why)) return;
  ErrorMessage message;
  std::snprintf(message.text, sizeof message.text,
                "shmr: this change to the writable shared object '%s' would go to a private "
                "copy, not to shared memory: %s",
                handle.mapping->region().name().c_str(), why);
  raise_r_error(message);
}

void refuse_element_replacement(SEXP list, const ListHandle& handle, R_xlen_t i) {
  if (handle.mapping->region().access() != Access::SharedWritable) return;
  SEXP found = PROTECT(writer_environments());
  const bool refused = is_script_change_of_share(list, handle, VECTOR_ELT(found, 0),
                                                 VECTOR_ELT(found, 1), VECTOR_ELT(found, 2),
                                                 VECTOR_ELT(found, 3));
  UNPROTECT(1);
  if (!refused) return;
  // A data frame's `[<-` changing several columns has a column it cannot
  // write in place: its refusal says which and why.
  static SEXP helper = nullptr;
  refuse_partial_change(handle.mapping->region().name(), R_NilValue, "several_columns_refusal",
                        helper);
  SEXP names = Rf_getAttrib(list, R_NamesSymbol);
  char element[160];
  if (TYPEOF(names) == STRSXP && i < XLENGTH(names) && STRING_ELT(names, i) != NA_STRING &&
      CHAR(STRING_ELT(names, i))[0] != '\0')
    std::snprintf(element, sizeof element, "'%.100s'", Rf_translateCharUTF8(STRING_ELT(names, i)));
  else
    std::snprintf(element, sizeof element, "%lld", static_cast<long long>(i) + 1);
  ErrorMessage message;
  std::snprintf(message.text, sizeof message.text,
                "shmr: this change puts a new object in place of element %s of a list or data "
                "frame of the writable shared object '%s' (a whole element or column replaced, "
                "or one R made anew for a value of a wider type, a longer vector or new "
                "attributes). Shared memory cannot take it, so the list would silently become a "
                "private copy that other processes never see; nothing was changed. Write the "
                "values into the element in place, of the same type and length (l$a[] <- v, "
                "d[[\"a\"]][] <- v), or change a private copy made with fetch().",
                element, handle.mapping->region().name().c_str());
  raise_r_error(message);
}

void take_snapshot(SEXP x, ViewHandle& handle) {
  make_private(x, handle);
  handle.snapshot_due = false;
  handle.slow_path = handle.mapping->region().closed_flag();
}

}  // namespace shmr::glue

// What R's `[<-` does to `x` when it is part of a writable share: "through"
// (a vector of fixed-width elements that writes to shared memory), "strings"
// (a character vector, which cannot change in place), "list" (a list, which
// R changes as a list of its own: a list view, or on R < 4.3 a list of views
// of the share), or "" (not part of a writable share). No C++ object lives
// while R allocates the answer.
extern "C" SEXP shmr_writable_part(SEXP x) {
  using namespace shmr::glue;
  auto writes_through = [](SEXP value) {
    const ViewHandle* view = view_handle(unwrapped(value));
    return view != nullptr && view_writes_through(*view) && !view->holds_private_values();
  };
  const char* part = "";
  if (writes_through(x)) {
    part = TYPEOF(x) == STRSXP ? "strings" : "through";
  } else if (TYPEOF(x) == VECSXP) {
    x = unwrapped(x);
    if (const ListHandle* list = list_view_handle(x)) {
      if (list->mapping->region().access() == shmr::Access::SharedWritable) part = "list";
    } else if (!ALTREP(x)) {
      for (R_xlen_t i = 0; i < XLENGTH(x) && *part == '\0'; ++i)
        if (writes_through(VECTOR_ELT(x, i))) part = "list";
    }
  }
  return Rf_mkString(part);
}

// Whether `a` and `b` read the same elements of a writable share.
extern "C" SEXP shmr_same_writable_part(SEXP a, SEXP b) {
  using namespace shmr::glue;
  const ViewHandle* view = view_handle(unwrapped(a));
  const bool same = view != nullptr && view_writes_through(*view) && reads_same_node(b, *view);
  return Rf_ScalarLogical(same);
}
