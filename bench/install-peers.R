# Installs the peer packages the benchmarks compare shmr with, whichever are
# missing and installable on the running R, from the repositories R is
# configured with (getOption("repos"); an error when none is set):
#
#   Rscript bench/install-peers.R
#
# It never fails (exit status 0 whatever happens) and prints one line per
# package: "installed", "already there", "skipped: <reason>" or
# "failed: <reason>". Packages go into the first writable library path.
#
# bettermc was removed from CRAN (it is no longer in the repository's
# index); its last release is installed from the CRAN archive instead, after
# its dependencies.

peers <- list(
  callr     = list(),
  bigmemory = list(),
  bettermc  = list(archive = "bettermc_1.2.1.tar.gz", deps = "checkmate"),
  shard     = list(),
  mori      = list(min_r = "4.3"),
  memshare  = list(min_r = "4.3")
)

main <- function() {
  # The repositories R is configured with (Rprofile.site, ~/.Rprofile);
  # none is written here.
  repos <- getOption("repos")
  repos <- repos[!is.na(repos) & nzchar(repos) & repos != "@CRAN@"]
  if (!length(repos)) {
    stop("no package repository is set: choose one, for example with ",
         "options(repos = c(CRAN = \"<a CRAN mirror>\")) in ~/.Rprofile, ",
         "or chooseCRANmirror() in an interactive R session", call. = FALSE)
  }
  cran <- if ("CRAN" %in% names(repos)) repos[["CRAN"]] else repos[[1L]]

  writable <- Filter(function(p) dir.exists(p) && file.access(p, 2L) == 0L, .libPaths())
  lib <- if (length(writable)) writable[[1L]] else NULL

  index <- tryCatch(
    suppressWarnings(rownames(utils::available.packages(repos = repos))),
    error = function(e) NULL
  )

  # install.packages() reports failures as warnings; collect them, keep going.
  install <- function(pkgs, ...) {
    warnings <- character()
    withCallingHandlers(
      utils::capture.output(
        utils::install.packages(pkgs, lib = lib, quiet = TRUE, ...),
        type = "message"
      ),
      warning = function(w) {
        warnings <<- c(warnings, conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    )
    # The index download falls back from PACKAGES.rds to PACKAGES.gz with a
    # warning that means nothing here.
    grep("PACKAGES", warnings, value = TRUE, invert = TRUE, fixed = TRUE)
  }
  installed <- function(pkg) nzchar(system.file(package = pkg, lib.loc = lib))

  for (pkg in names(peers)) {
    spec <- peers[[pkg]]
    status <- tryCatch({
      if (nzchar(system.file(package = pkg))) {
        "already there"
      } else if (!is.null(spec$min_r) && getRversion() < spec$min_r) {
        sprintf("skipped: needs R >= %s, this is R %s", spec$min_r, getRversion())
      } else if (is.null(lib)) {
        "skipped: no writable library in .libPaths()"
      } else if (!is.null(index) && !(pkg %in% index) && !is.null(spec$archive)) {
        missing <- Filter(function(d) !nzchar(system.file(package = d)), spec$deps)
        problems <- if (length(missing)) install(missing, repos = repos) else character()
        url <- sprintf("%s/src/contrib/Archive/%s/%s", sub("/$", "", cran), pkg, spec$archive)
        problems <- c(problems, install(url, repos = NULL, type = "source"))
        if (installed(pkg)) {
          paste("installed (from the CRAN archive:", spec$archive, "- no longer on CRAN)")
        } else {
          paste("failed:", c(problems, "not installed from the CRAN archive")[[1L]])
        }
      } else if (!is.null(index) && !(pkg %in% index)) {
        sprintf("skipped: not available on CRAN for R %s", getRversion())
      } else {
        problems <- install(pkg, repos = repos)
        if (installed(pkg)) "installed" else
          paste("failed:", c(problems, "install.packages() did not install it")[[1L]])
      }
    }, error = function(e) paste("failed:", conditionMessage(e)))
    cat(sprintf("%-10s %s\n", pkg, status))
  }
}

tryCatch(main(), error = function(e) cat("install-peers.R:", conditionMessage(e), "\n"))
invisible(NULL)
