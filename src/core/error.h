// The exception type the engine throws; the R glue maps its kind to a
// message prefix so users can tell "missing" from "corrupt" from "full".
#pragma once

#include <stdexcept>
#include <string>

namespace shmr {

enum class ErrorKind {
  InvalidArgument,
  NotFound,
  AlreadyExists,
  Corrupt,
  NoSpace,
  System,
  Closed,
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

// mmap() refused for want of address space (ENOMEM: ulimit -v or -d, or
// the number of mappings): unmapping what is no longer used may let the
// same mapping through.
class AddressSpaceRefused : public Error {
 public:
  using Error::Error;
};

// Throws Error(System) with strerror(errnum) appended to `what`.
[[noreturn]] void throw_system_error(const std::string& what, int errnum);

}  // namespace shmr
