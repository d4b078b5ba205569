// .Call entry points of the worker pools (R/pool*.R): what the kernel tells
// about a worker (memory, bytes of shmr regions mapped, running or not),
// which processes a start of workers launched, and which results of a chunk
// may be large enough to go back through shared memory.
#include <cpp11/protect.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/names.h"
#include "core/process.h"
#include "core/process_stats.h"
#include "core/region_file.h"
#include "r_api.h"
#include "r_boundary.h"

namespace ps = shmr::process_stats;
namespace process = shmr::process;

namespace {

int64_t as_pid(SEXP pid) {
  double value = Rf_asReal(pid);
  return ISNAN(value) ? 0 : static_cast<int64_t>(value);
}

// A number the kernel may not tell, as one R number: NA when unknown.
SEXP number_or_na(const std::optional<uint64_t>& number) {
  const double value = number ? static_cast<double>(*number) : NA_REAL;
  return cpp11::safe[Rf_ScalarReal](value);
}

// Adds to `total` an estimate of the bytes of `x`, at least what
// object.size() counts, and stops counting once it passes `limit`. Deeper
// than kMaxDepth counts as past the limit: the caller then measures.
constexpr int kMaxDepth = 64;
constexpr double kHeaderBytes = 64;

void add_size(SEXP x, double limit, int depth, double& total) {
  if (total > limit) return;
  if (depth > kMaxDepth) {
    total = limit + 1;
    return;
  }
  total += kHeaderBytes;
  switch (TYPEOF(x)) {
    case LGLSXP:
    case INTSXP:
      total += 4.0 * static_cast<double>(XLENGTH(x));
      break;
    case REALSXP:
      total += 8.0 * static_cast<double>(XLENGTH(x));
      break;
    case CPLXSXP:
      total += 16.0 * static_cast<double>(XLENGTH(x));
      break;
    case RAWSXP:
      total += static_cast<double>(XLENGTH(x));
      break;
    case STRSXP: {
      R_xlen_t n = XLENGTH(x);
      total += 8.0 * static_cast<double>(n);
      if (ALTREP(x)) {
        // Reading the strings of an ALTREP vector may run R code.
        total += kHeaderBytes * static_cast<double>(n);
        break;
      }
      for (R_xlen_t i = 0; i < n && total <= limit; ++i) {
        total += kHeaderBytes + static_cast<double>(LENGTH(STRING_ELT(x, i)));
      }
      break;
    }
    case VECSXP:
    case EXPRSXP: {
      R_xlen_t n = XLENGTH(x);
      total += 8.0 * static_cast<double>(n);
      for (R_xlen_t i = 0; i < n && total <= limit; ++i) {
        add_size(VECTOR_ELT(x, i), limit, depth + 1, total);
      }
      break;
    }
    default:
      return;  // functions, environments, ...: object.size() counts no more
  }
  for (SEXP a = ATTRIB(x); a != R_NilValue && total <= limit; a = CDR(a)) {
    add_size(CAR(a), limit, depth + 1, total);
  }
}

}  // namespace

// Memory of process `pid` in bytes: rss, pss, anonymous, private (all NA
// when it cannot be read).
extern "C" SEXP shmr_process_memory(SEXP pid) {
  SHMR_BEGIN
  std::optional<ps::Memory> m = ps::memory(as_pid(pid));
  double values[4] = {NA_REAL, NA_REAL, NA_REAL, NA_REAL};
  if (m) {
    values[0] = static_cast<double>(m->rss);
    values[1] = static_cast<double>(m->pss);
    values[2] = static_cast<double>(m->anonymous);
    values[3] = static_cast<double>(m->private_bytes);
  }
  return cpp11::unwind_protect([&] {
    static const char* fields[] = {"rss", "pss", "anonymous", "private"};
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 4));
    SEXP names = PROTECT(Rf_allocVector(STRSXP, 4));
    for (int i = 0; i < 4; ++i) {
      REAL(out)[i] = values[i];
      SET_STRING_ELT(names, i, Rf_mkChar(fields[i]));
    }
    Rf_setAttrib(out, R_NamesSymbol, names);
    UNPROTECT(2);
    return out;
  });
  SHMR_END
}

// The machine's physical memory in bytes (NA when unknown).
extern "C" SEXP shmr_physical_memory() {
  SHMR_BEGIN
  return number_or_na(ps::physical_memory());
  SHMR_END
}

// How many more descriptors this process may open (NA when unlimited or
// unknown).
extern "C" SEXP shmr_free_descriptors() {
  SHMR_BEGIN
  return number_or_na(ps::free_descriptors());
  SHMR_END
}

// Closes the sockets a PSOCK worker inherited from the process that started
// it: makePSOCKcluster() starts workers through system(), and R opens its
// sockets without FD_CLOEXEC, so each worker held the caller's end of the
// connection of every worker started before it. Those copies kept a pool
// dropped without pool_stop() running as long as any later worker: its
// workers never saw their caller close the connection. Called before the
// worker connects, when it has no socket of its own. Returns how many.
extern "C" SEXP shmr_close_inherited_sockets() {
  SHMR_BEGIN
  return cpp11::safe[Rf_ScalarInteger](ps::close_inherited_sockets());
  SHMR_END
}

// Bytes of shmr regions process `pid` maps (NA when that cannot be read):
// regions by name, and those it created under their temporary name.
extern "C" SEXP shmr_region_bytes_mapped(SEXP pid) {
  SHMR_BEGIN
  return number_or_na(ps::mapped_bytes_of_files(
      as_pid(pid), {shmr::names::kPrefix, shmr::kTemporaryPrefix}));
  SHMR_END
}

// Whether process `pid` of this PID namespace, started at `start_ticks`
// (0: whenever), runs: TRUE while it does, FALSE once it is gone (or a
// zombie, or the PID now belongs to a process started at another time), NA
// when that cannot be told.
extern "C" SEXP shmr_process_running(SEXP pid, SEXP start_ticks) {
  SHMR_BEGIN
  // Both arguments are numbers checked by the R caller (check_pid()).
  const double ticks = Rf_asReal(start_ticks);
  process::Identity who{as_pid(pid), ISNAN(ticks) || ticks < 0 ? 0 : static_cast<uint64_t>(ticks),
                        process::current().pid_namespace};
  const process::Liveness state = process::liveness(who);
  const int value = state == process::Liveness::Alive  ? TRUE
                    : state == process::Liveness::Dead ? FALSE
                                                       : NA_LOGICAL;
  return cpp11::safe[Rf_ScalarLogical](value);
  SHMR_END
}

// The PIDs (doubles) of the processes whose command line has an argument
// containing `word`, a single string the R caller checked; NULL when the
// search could not look at every process.
extern "C" SEXP shmr_processes_mentioning(SEXP word) {
  SHMR_BEGIN
  std::string wanted;
  cpp11::unwind_protect([&] { wanted = Rf_translateCharUTF8(STRING_ELT(word, 0)); });
  const std::optional<std::vector<int64_t>> pids = ps::processes_mentioning(wanted);
  return cpp11::unwind_protect([&] {
    if (!pids) return R_NilValue;
    SEXP out = PROTECT(Rf_allocVector(REALSXP, static_cast<R_xlen_t>(pids->size())));
    for (size_t i = 0; i < pids->size(); ++i) REAL(out)[i] = static_cast<double>((*pids)[i]);
    UNPROTECT(1);
    return out;
  });
  SHMR_END
}

// Positions (1-based) of the elements of the list `results` whose size may
// exceed `bytes`; the caller measures those with object.size().
extern "C" SEXP shmr_results_over(SEXP results, SEXP bytes) {
  SHMR_BEGIN
  return cpp11::unwind_protect([&] {
    double limit = Rf_asReal(bytes);
    R_xlen_t n = TYPEOF(results) == VECSXP ? XLENGTH(results) : 0;
    R_xlen_t count = 0;
    SEXP over = PROTECT(Rf_allocVector(INTSXP, n));
    for (R_xlen_t i = 0; i < n && !ISNAN(limit); ++i) {
      SEXP value = VECTOR_ELT(results, i);
      double total = 0;
      add_size(value, limit / 2, 0, total);
      if (total > limit / 2) INTEGER(over)[count++] = static_cast<int>(i + 1);
    }
    SEXP out = Rf_lengthgets(over, count);
    UNPROTECT(1);
    return out;
  });
  SHMR_END
}
