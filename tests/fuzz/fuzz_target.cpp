// The libFuzzer entry point. tools/run-fuzz.sh builds it once per target,
// with -DSHMR_FUZZ_TARGET=region, locator or names, which picks the check
// from fuzz_checks.h. A broken promise aborts, so libFuzzer keeps the input
// as a crash.
#include <cstdio>
#include <cstdlib>

#include "fuzz_checks.h"

#ifndef SHMR_FUZZ_TARGET
#error "build with -DSHMR_FUZZ_TARGET=region|locator|names"
#endif
#define SHMR_FUZZ_CONCAT2(a, b) a##b
#define SHMR_FUZZ_CONCAT(a, b) SHMR_FUZZ_CONCAT2(a, b)
#define SHMR_FUZZ_STRING2(a) #a
#define SHMR_FUZZ_STRING(a) SHMR_FUZZ_STRING2(a)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string problem = shmr_fuzz::SHMR_FUZZ_CONCAT(check_, SHMR_FUZZ_TARGET)(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "shmr fuzz (%s): %s\n", SHMR_FUZZ_STRING(SHMR_FUZZ_TARGET), problem.c_str());
    std::abort();
  }
  return 0;
}
