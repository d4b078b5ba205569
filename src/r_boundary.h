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
//   that owns no C++ object.
#pragma once

#include <cpp11/declarations.hpp>
#include <cpp11/protect.hpp>

#include <cstdio>
#include <exception>

#include "core/error.h"

namespace shmr::glue {

inline constexpr size_t kMessageSize = 1024;

// A fixed buffer, so raising an error destroys nothing.
struct ErrorMessage {
  char text[kMessageSize] = "";
  bool set() const noexcept { return text[0] != '\0'; }
  void assign(const char* message) noexcept { std::snprintf(text, sizeof text, "%s", message); }
};

[[noreturn]] inline void raise_r_error(const ErrorMessage& message) {
  Rf_errorcall(R_NilValue, "%s", message.text);
}

// Runs `body`; on a C++ exception stores its message for the caller to raise
// (an engine error with the "shmr: " prefix users grep for, as
// with_messages() gives .Call entry points).
template <typename Body>
inline void capture_exception(ErrorMessage& message, Body&& body) noexcept {
  try {
    body();
  } catch (const Error& e) {
    std::snprintf(message.text, sizeof message.text, "shmr: %s", e.what());
  } catch (const std::exception& e) {
    message.assign(e.what());
  } catch (...) {
    message.assign("shmr: unknown C++ error");
  }
}

}  // namespace shmr::glue
