# Another installed R, of the other side of R 4.3 (where shared lists became
# one ALTREP object), with shmr installed: for tests of processes of two R
# versions using the same shared objects. SHMR_OTHER_R names its R
# binary and SHMR_OTHER_R_LIBS the libraries that hold shmr (and callr's
# needs) for it. Without them, what tools/run-r-suites.sh leaves (`make
# test` builds shmr for the machine's R and for R 4.5 before testing
# either): on the machine's older R, R 4.5 from ../shared/tools/r45.sh with
# its build; on R 4.5, the machine's R (`R` on the PATH) with its build. NULL
# when there is none.
other_r <- function() {
  r <- Sys.getenv("SHMR_OTHER_R")
  libs <- Sys.getenv("SHMR_OTHER_R_LIBS")
  if (!nzchar(r)) {
    root <- normalizePath(testthat::test_path("..", ".."), mustWork = FALSE)
    if (getRversion() >= "4.3.0") {
      r <- Sys.which("R")
      built <- Sys.glob(file.path(root, "build", "r-lib", "R-4.[0-2]*"))
      deps <- character()
    } else {
      r <- "/root/.cache/shmr-r/bin/R"
      built <- Sys.glob(file.path(root, "build", "r-lib", "R-4.5*"))
      deps <- Sys.glob(file.path(root, ".r-library", "4.5*"))
    }
    if (!nzchar(libs)) libs <- paste(c(built, deps), collapse = ":")
  }
  if (!nzchar(r) || !file.exists(r) || !nzchar(libs)) return(NULL)
  version <- tryCatch(
    system2(r, c("--vanilla", "-s", "-e", shQuote("cat(format(getRversion()), requireNamespace('shmr', quietly = TRUE))")),
            stdout = TRUE, stderr = FALSE, env = other_r_env(libs)),
    error = function(e) character(), warning = function(w) character())
  parts <- strsplit(tail(c("", version), 1), " ")[[1]]
  if (length(parts) != 2L || parts[2] != "TRUE") return(NULL)
  list(r = r, libs = libs, version = package_version(parts[1]))
}

# The environment variables the other R runs with: its libraries only. This
# R's own R_LIBS_USER (R 4.5's packages, under tools/run-r-suites.sh) holds
# packages built for another R.
other_r_env <- function(libs) {
  c(paste0("R_LIBS=", libs), paste0("R_LIBS_USER=", libs))
}

# other_r(), or a skip that says why not: `newer` wants it on R >= 4.3 and
# this R older, or the other way round.
other_r_or_skip <- function(newer) {
  testthat::skip_if_not_installed("callr")
  if (newer && getRversion() >= "4.3.0") testthat::skip("this R has ALTREP lists already")
  if (!newer && getRversion() < "4.3.0") testthat::skip("this R has no ALTREP lists")
  other <- other_r()
  if (is.null(other)) testthat::skip("no other R with shmr (set SHMR_OTHER_R and SHMR_OTHER_R_LIBS)")
  if (newer != (other$version >= "4.3.0")) testthat::skip("the other R is on the same side of R 4.3")
  other
}

# Starts `fun(dir)` in the other R (a callr background process).
start_in_other_r <- function(other, fun, dir) {
  environment(fun) <- globalenv()
  callr::r_bg(function(fun, dir) {
    library(shmr)
    fun(dir)
  }, args = list(fun = fun, dir = dir), libpath = strsplit(other$libs, ":")[[1]],
  env = c(callr::rcmd_safe_env(), R_LIBS = other$libs, R_LIBS_USER = other$libs),
  arch = other$r, supervise = TRUE)
}
