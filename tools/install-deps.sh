#!/usr/bin/env bash
# Installs what `make` needs and is missing: Debian packages with apt-get,
# R packages from the repositories R is configured with (getOption("repos"),
# as set in Rprofile.site or ~/.Rprofile). Safe to run again; does nothing
# when all is there.
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
# With --memshare-estimators, also the packages memshare's mutualinfo()
# estimators come from. With --suggests, also every package in
# DESCRIPTION's Suggests (for R CMD check and the benchmarks). Not
# --vanilla: the profiles are where R's repositories are configured.
"${RSCRIPT:-Rscript}" - "$@" <<'RS'
# The repositories R is configured with; none is written here.
configured_repos <- function() {
  repos <- getOption("repos")
  repos <- repos[!is.na(repos) & nzchar(repos) & repos != "@CRAN@"]
  if (!length(repos)) {
    stop("install-deps: no package repository is set. Choose one, for example with ",
         "options(repos = c(CRAN = \"<a CRAN mirror>\")) in ~/.Rprofile, ",
         "or chooseCRANmirror() in an interactive R session.", call. = FALSE)
  }
  repos
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
# memshare's mutualinfo() estimators, which shmr's tests compare with
# memshare's values (R 4.5 leg of make test).
if ("--memshare-estimators" %in% commandArgs(trailingOnly = TRUE)) {
  optional <- c(optional, "ScatterDensity", "DataVisualizations", "mpmi")
}
if ("--suggests" %in% commandArgs(trailingOnly = TRUE)) {
  suggests <- read.dcf("DESCRIPTION", fields = "Suggests")[1, 1]
  suggests <- trimws(sub("\\(.*", "", strsplit(suggests, ",")[[1]]))
  optional <- unique(c(optional, suggests, "roxygen2"))
}
have <- rownames(installed.packages())
missing <- setdiff(required, have)
if (length(missing)) {
  message("install-deps: installing R packages: ", paste(missing, collapse = ", "))
  install.packages(missing, repos = configured_repos(), lib = target, Ncpus = 2, quiet = TRUE)
}
still <- setdiff(required, rownames(installed.packages()))
if (length(still)) stop("could not install: ", paste(still, collapse = ", "))
missing <- setdiff(optional, rownames(installed.packages()))
if (length(missing)) {
  message("install-deps: installing optional R packages: ", paste(missing, collapse = ", "))
  try(install.packages(missing, repos = configured_repos(), lib = target, Ncpus = 2, quiet = TRUE))
}
RS
