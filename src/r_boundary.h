// Rules at the R/C++ boundary, in one place:
// - .Call entry points wrap their body in BEGIN_CPP11 / END_CPP11, so a C++
//   exception becomes an R error only after every destructor has run;
// - R API calls that may raise an error run inside cpp11::unwind_protect (or
//   cpp11::safe), so an R error unwinds C++ frames as an exception. That
//   includes reading arguments: Rf_asLogical()/Rf_asReal() (a coercion
//   warning is an error under options(warn = 2)), and XLENGTH(),
//   VECTOR_ELT(), STRING_ELT() and DATAPTR() of an ALTREP object, which run
//   its class's code (api_support.h has as_logical() and as_real());
// - inside an unwind_protect body, and in ALTREP methods, only plain data
//   is live around such calls (a longjmp skips the frames in between), and
//   a walk over a nested object keeps its stack on the heap, never in C
//   recursion (fetch.cpp keeps it in an R list);
// - ALTREP methods are called by R directly: they catch everything, leave the
//   try block, and only then raise the R error (raise_r_error), from a frame
//   that owns no C++ object;
// - an interrupt (Ctrl-C) waits while shmr's C++ code runs (InterruptsHeld,
//   in every entry point and in capture_exception): R acts on a pending
//   interrupt in any allocation that collects garbage, and there it would
//   jump over C++ frames, even out of the first-call initialisation of a
//   function-local static (cpp11's preserve list, unwind_protect's token),
//   which the next call then finds half done and aborts or waits on forever.
//   Only R code shmr calls back into, which may run long (fetching from
//   another host), takes interrupts (eval_taking_interrupts); one held
//   meanwhile is acted on once the entry point has returned (EntryPoint).
#pragma once

#include <cpp11/declarations.hpp>
#include <cpp11/protect.hpp>
#include <R_ext/GraphicsEngine.h>  // R_interrupts_suspended, declared for graphics devices

#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>

#include "core/error.h"

namespace shmr::glue {

inline constexpr size_t kMessageSize = 1024;

// What a std::bad_alloc says to R users ("std::bad_alloc" alone names no cause).
inline constexpr const char* kOutOfMemory =
    "shmr: out of memory (an allocation failed: the machine's memory or the process's "
    "address-space limit, ulimit -v, is exhausted)";

// A fixed buffer, so raising an error destroys nothing.
struct ErrorMessage {
  char text[kMessageSize] = "";
  bool set() const noexcept { return text[0] != '\0'; }
  void assign(const char* message) noexcept { std::snprintf(text, sizeof text, "%s", message); }
};

[[noreturn]] inline void raise_r_error(const ErrorMessage& message) {
  Rf_errorcall(R_NilValue, "%s", message.text);
}

// Whether interrupts were suspended before the outermost InterruptsHeld
// began: what R code shmr calls back into runs with.
inline bool interrupts_holding = false;
inline Rboolean interrupts_outside = FALSE;

// Suspends interrupts for its lifetime: one that comes meanwhile stays
// pending, for EntryPoint (below) or R's next check to act on. Should an R
// error jump over the hold, R puts the flag back itself (each R context
// saves it).
class InterruptsHeld {
 public:
  InterruptsHeld() noexcept
      : suspended_(R_interrupts_suspended),
        holding_(interrupts_holding),
        outside_(interrupts_outside) {
    if (!holding_) interrupts_outside = R_interrupts_suspended;
    interrupts_holding = true;
    R_interrupts_suspended = TRUE;
  }
  ~InterruptsHeld() {
    R_interrupts_suspended = suspended_;
    interrupts_holding = holding_;
    interrupts_outside = outside_;
  }
  InterruptsHeld(const InterruptsHeld&) = delete;
  InterruptsHeld& operator=(const InterruptsHeld&) = delete;

 private:
  Rboolean suspended_;
  bool holding_;
  Rboolean outside_;
};

// Acts on an interrupt that came while an entry point ran, now that it has
// returned: its C++ objects are gone, and its value is protected meanwhile,
// so a handler that resumes (invokeRestart("resume")) gets it back whole.
inline SEXP act_on_held_interrupt(SEXP value) {
  if (R_interrupts_pending && !R_interrupts_suspended) {
    PROTECT(value);
    Rf_onintr();
    UNPROTECT(1);
  }
  return value;
}

// What R calls for the entry point F (SHMR_CALL_METHOD registers it).
template <typename Signature, Signature F>
struct EntryPoint;

template <typename... Args, SEXP (*F)(Args...)>
struct EntryPoint<SEXP (*)(Args...), F> {
  static SEXP call(Args... args) { return act_on_held_interrupt(F(args...)); }
};

// Rf_eval() of R code that may run long, with interrupts as they were
// outside shmr. Call it as any R call that may raise: inside unwind_protect,
// or with only plain data live; a jump out of it leaves R to restore the
// flag, and the value is returned with the hold in place again.
inline SEXP eval_taking_interrupts(SEXP call, SEXP env) {
  const Rboolean held = R_interrupts_suspended;
  if (interrupts_holding) R_interrupts_suspended = interrupts_outside;
  SEXP value = Rf_eval(call, env);
  R_interrupts_suspended = held;
  return value;
}

// Runs `body`; on a C++ exception stores its message for the caller to raise
// (an engine error with the "shmr: " prefix users grep for, as
// with_messages() gives .Call entry points).
template <typename Body>
inline void capture_exception(ErrorMessage& message, Body&& body) noexcept {
  InterruptsHeld interrupts_held;
  try {
    body();
  } catch (const Error& e) {
    std::snprintf(message.text, sizeof message.text, "shmr: %s", e.what());
  } catch (const std::bad_alloc&) {
    message.assign(kOutOfMemory);
  } catch (const std::exception& e) {
    message.assign(e.what());
  } catch (...) {
    message.assign("shmr: unknown C++ error");
  }
}

}  // namespace shmr::glue

// BEGIN_CPP11 / END_CPP11 for shmr's .Call entry points: an interrupt waits
// until the entry point has returned (SHMR_CALL_METHOD), and a failed
// allocation says so in words.
#define SHMR_BEGIN                               \
  BEGIN_CPP11                                    \
  ::shmr::glue::InterruptsHeld interrupts_held_; \
  try {
#define SHMR_END                                        \
  }                                                     \
  catch (const std::bad_alloc&) {                       \
    throw std::runtime_error(::shmr::glue::kOutOfMemory); \
  }                                                     \
  END_CPP11

// An R_CallMethodDef entry for the entry point `name` of `arity` arguments.
#define SHMR_CALL_METHOD(name, arity) \
  { #name, (DL_FUNC) & ::shmr::glue::EntryPoint<decltype(&name), &name>::call, arity }
