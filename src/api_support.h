// Helpers shared by the .Call entry points (api_*.cpp).
#pragma once

#include <cpp11/declarations.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "core/store.h"
#include "mapping.h"
#include "r_api.h"
#include "r_boundary.h"

namespace shmr::glue {

// Where an R object comes from, when it is shared.
struct Origin {
  std::shared_ptr<Mapping> mapping;
  uint64_t node = 0;
};

Origin origin_of(SEXP x);

// The string in a length-1 character vector, or "" for anything else.
std::string as_string(SEXP x);

// Rf_asLogical() and Rf_asReal(), with an R error (a coercion warning under
// options(warn = 2)) turned into a C++ exception: safe with C++ objects live.
int as_logical(SEXP x);
double as_real(SEXP x);

// The element `key` of a named list, or R_NilValue.
SEXP list_field(SEXP list, const char* key);

// A region name from what a user typed: "my_data" and "shmr_my_data" both
// name the region file "shmr_my_data".
std::string region_name_for(const std::string& text);

// The madvise() flag of an access-pattern hint as R names it ("normal",
// "sequential", "random", "willneed", "dontneed"); throws InvalidArgument
// for any other name.
int madvise_flag(const std::string& advice);

// CreateOptions from the list R's share() and segment_create() build:
// backing, data_directory, name, readonly, persist, shm_capacity.
CreateOptions create_options(SEXP options);

// The shm_capacity setting (shm_capacity() in R/options.R) in bytes; 0 for
// no cap (also for NA or a value not above 0).
uint64_t shm_capacity_from(SEXP value);

// Runs `body`, re-throwing engine errors with the "shmr: " prefix users
// grep for.
template <typename Body>
SEXP with_messages(Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throw std::runtime_error(std::string("shmr: ") + e.what());
  }
}

}  // namespace shmr::glue
