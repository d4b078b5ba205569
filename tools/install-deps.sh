#!/usr/bin/env bash
# Installs what `make` needs and is missing: Debian packages with apt-get,
# R packages from CRAN. Safe to run again; does nothing when all is there.
set -euo pipefail

need_deb=()
command -v cmake >/dev/null 2>&1 || need_deb+=(cmake)
[ -f /usr/include/gtest/gtest.h ] || need_deb+=(libgtest-dev)
[ -d /usr/src/googletest ] || need_deb+=(googletest)
command -v R >/dev/null 2>&1 || need_deb+=(r-base-dev)

if [ ${#need_deb[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${need_deb[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_deb[@]}"
fi

# Hard requirements first, then the optional ones used by tests and demos.
# With --suggests, also every package in DESCRIPTION's Suggests (for
# R CMD check and the benchmarks).
"${RSCRIPT:-Rscript}" --vanilla - "$@" <<'RS'
repos <- getOption("repos")
if (is.null(repos) || identical(unname(repos["CRAN"]), "@CRAN@")) {
  repos <- c(CRAN = "https://cloud.r-project.org")
}
lib <- Sys.getenv("R_LIBS_USER")
libs <- .libPaths()
target <- libs[file.access(libs, 2) == 0][1]
if (is.na(target)) {
  dir.create(lib, recursive = TRUE, showWarnings = FALSE)
  .libPaths(c(lib, libs))
  target <- lib
}
required <- c("cpp11", "cli", "testthat", "callr")
optional <- c("mirai", "future", "future.apply", "foreach", "doParallel", "R6")
if ("--suggests" %in% commandArgs(trailingOnly = TRUE)) {
  suggests <- read.dcf("DESCRIPTION", fields = "Suggests")[1, 1]
  suggests <- trimws(sub("\\(.*", "", strsplit(suggests, ",")[[1]]))
  optional <- unique(c(optional, suggests, "roxygen2"))
}
have <- rownames(installed.packages())
missing <- setdiff(required, have)
if (length(missing)) {
  message("install-deps: installing R packages: ", paste(missing, collapse = ", "))
  install.packages(missing, repos = repos, lib = target, Ncpus = 2, quiet = TRUE)
}
still <- setdiff(required, rownames(installed.packages()))
if (length(still)) stop("could not install: ", paste(still, collapse = ", "))
missing <- setdiff(optional, rownames(installed.packages()))
if (length(missing)) {
  message("install-deps: installing optional R packages: ", paste(missing, collapse = ", "))
  try(install.packages(missing, repos = repos, lib = target, Ncpus = 2, quiet = TRUE))
}
RS
