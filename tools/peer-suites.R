# Runs the peers' own testthat suites against shmr's compatibility layers.
#
#   Rscript tools/peer-suites.R [--peers mori,shard] [--verbose] [--out FILE]
#   make peer-tests                      (R=<R 4.5's R> for mori and memshare)
#
# For each peer (mori, memshare, bettermc, shard) it downloads the peer's
# source package from the configured CRAN repository (getOption("repos");
# bettermc, archived, from that repository's archive) into a temporary
# directory, builds a throwaway package of the same name whose NAMESPACE
# imports from shmr and re-exports every function the peer exports and shmr
# has, installs it into a temporary library, and runs each selected test
# file of the peer in a fresh R process, with R_LIBS exported so that the
# tests' worker processes load the same shmr, and NOT_CRAN=true (as
# devtools::test() sets it: skip_on_cran() tests run too). Nothing is
# written into the repository. shmr must be installed for the R that runs this script.
#
# Each expectation counts as passed, failed, or disclosed: a failure inside
# a test listed in tools/peer-suites-disclosed.csv (a difference that shmr's
# help pages disclose, or a test of the peer's internals) is disclosed, not
# failed. A test that errors counts its error as one failed expectation; a
# test file that cannot run at all counts as one failure. The exit status
# is 1 when any failure is not disclosed.

peers <- list(
  mori = list(min_r = "4.3", files = NULL),
  memshare = list(min_r = "4.3", files = NULL),
  bettermc = list(archive = "bettermc_1.2.1.tar.gz", files = "copy2shm"),
  shard = list(files = c("share", "deep-share", "share-hook", "segment", "pool", "cow"))
)

file_timeout <- 900 # seconds for one test file

main <- function(args) {
  here <- script_directory()
  selected <- option_value(args, "--peers", paste(names(peers), collapse = ","))
  selected <- strsplit(selected, ",", fixed = TRUE)[[1L]]
  unknown <- setdiff(selected, names(peers))
  if (length(unknown)) stop("unknown peer: ", paste(unknown, collapse = ", "), call. = FALSE)
  verbose <- "--verbose" %in% args
  out_file <- option_value(args, "--out", NULL)

  if (!nzchar(system.file(package = "shmr"))) {
    stop("shmr is not installed for this R (", R.home(), "): install it first ",
         "(R CMD INSTALL .) into a library on R_LIBS", call. = FALSE)
  }
  repos <- cran_repository()
  disclosed <- read_disclosures(file.path(here, "peer-suites-disclosed.csv"))

  work <- tempfile("shmr-peer-suites-")
  dir.create(work)
  on.exit(unlink(work, recursive = TRUE), add = TRUE)
  library_dir <- file.path(work, "library")
  dir.create(library_dir)

  rows <- list()
  for (peer in selected) {
    spec <- peers[[peer]]
    if (!is.null(spec$min_r) && getRversion() < spec$min_r) {
      cat(sprintf("%-9s skipped: needs R >= %s, this is R %s\n", peer, spec$min_r, getRversion()))
      rows[[peer]] <- data.frame(peer = peer, passed = NA, failed = NA, disclosed = NA,
                                 skipped = NA, note = paste("needs R >=", spec$min_r))
      next
    }
    source_dir <- download_peer(peer, spec, repos, work)
    install_test_dependencies(source_dir, repos)
    build_standin(peer, source_dir, work, library_dir)
    results <- run_peer_tests(peer, spec, source_dir, library_dir, work)
    results <- classify(results, disclosed[disclosed$peer == peer, , drop = FALSE])
    report_peer(peer, results, verbose)
    stale <- unused_disclosures(disclosed[disclosed$peer == peer, , drop = FALSE], results)
    if (nrow(stale)) {
      cat(sprintf("  note: %d disclosed test(s) now pass or were not run: %s\n", nrow(stale),
                  paste(sprintf("%s: %s", stale$file, stale$test), collapse = "; ")))
    }
    rows[[peer]] <- data.frame(
      peer = peer, passed = sum(results$passed), failed = sum(results$failed_open),
      disclosed = sum(results$failed_disclosed), skipped = sum(results$skipped), note = ""
    )
  }
  summary <- do.call(rbind, rows)
  cat("\npeer       passed  failed  disclosed  skipped\n")
  for (i in seq_len(nrow(summary))) {
    r <- summary[i, ]
    if (is.na(r$passed)) {
      cat(sprintf("%-9s  %s\n", r$peer, r$note))
    } else {
      cat(sprintf("%-9s  %6d  %6d  %9d  %7d\n", r$peer, r$passed, r$failed, r$disclosed, r$skipped))
    }
  }
  cat(sprintf("R %s, shmr %s\n", getRversion(), utils::packageVersion("shmr")))
  if (!is.null(out_file)) utils::write.csv(summary, out_file, row.names = FALSE)
  if (any(summary$failed > 0, na.rm = TRUE)) quit(status = 1L)
  invisible(summary)
}

# --- sources -------------------------------------------------------------

cran_repository <- function() {
  repos <- getOption("repos")
  cran <- if (!is.null(repos) && "CRAN" %in% names(repos)) repos[["CRAN"]] else
    if (length(repos)) repos[[1L]] else NA_character_
  if (is.na(cran) || !nzchar(cran) || identical(cran, "@CRAN@")) {
    stop("no CRAN repository is configured: set options(repos = c(CRAN = \"<mirror>\")) ",
         "in .Rprofile or Rprofile.site", call. = FALSE)
  }
  c(CRAN = sub("/+$", "", cran))
}

download_peer <- function(peer, spec, repos, work) {
  destination <- file.path(work, "sources")
  dir.create(destination, showWarnings = FALSE)
  if (is.null(spec$archive)) {
    got <- utils::download.packages(peer, destdir = destination, repos = repos, type = "source",
                                    quiet = TRUE)
    if (!nrow(got)) stop("could not download ", peer, " from ", repos[["CRAN"]], call. = FALSE)
    tarball <- got[1L, 2L]
  } else {
    tarball <- file.path(destination, spec$archive)
    url <- sprintf("%s/src/contrib/Archive/%s/%s", repos[["CRAN"]], peer, spec$archive)
    status <- tryCatch(utils::download.file(url, tarball, quiet = TRUE, mode = "wb"),
                       error = function(e) 1L)
    if (!identical(as.integer(status), 0L)) {
      stop("could not download ", url, " (", peer, " is in the CRAN archive)", call. = FALSE)
    }
  }
  utils::untar(tarball, exdir = destination)
  file.path(destination, peer)
}

# The packages the peer's tests use that are missing here (its Suggests,
# less documentation tools), installed into the first writable library.
# Its Imports are not needed: the stand-in imports shmr only.
install_test_dependencies <- function(source_dir, repos) {
  fields <- read.dcf(file.path(source_dir, "DESCRIPTION"), fields = "Suggests")
  wanted <- unlist(strsplit(paste(fields[!is.na(fields)], collapse = ","), ","))
  wanted <- trimws(sub("\\(.*", "", wanted))
  wanted <- setdiff(wanted[nzchar(wanted)], c("knitr", "rmarkdown", "spelling", "covr",
                                              rownames(utils::installed.packages(priority = "base"))))
  missing <- wanted[!vapply(wanted, function(p) nzchar(system.file(package = p)), TRUE)]
  if (!length(missing)) return(invisible())
  libs <- .libPaths()
  target <- libs[file.access(libs, 2L) == 0L][1L]
  cat("installing what the tests use:", paste(missing, collapse = ", "), "\n")
  try(suppressWarnings(utils::install.packages(missing, lib = target, repos = repos, quiet = TRUE)))
}

# --- the stand-in package ----------------------------------------------

build_standin <- function(peer, source_dir, work, library_dir) {
  exports <- peer_exports(file.path(source_dir, "NAMESPACE"))
  shmr_exports <- getNamespaceExports("shmr")
  provided <- sort(intersect(exports, shmr_exports))
  standin <- file.path(work, "standins", peer)
  dir.create(file.path(standin, "R"), recursive = TRUE)
  writeLines(c(
    paste("Package:", peer), "Version: 0.0.0.9000",
    sprintf("Title: Stand-in for '%s' Re-exporting 'shmr'", peer),
    "Description: Built by shmr's tools/peer-suites.R to run the peer's tests; never installed for use.",
    "License: MIT", "Imports: shmr"
  ), file.path(standin, "DESCRIPTION"))
  writeLines(c(sprintf("importFrom(shmr, %s)", provided), sprintf("export(%s)", provided)),
             file.path(standin, "NAMESPACE"))
  writeLines("NULL", file.path(standin, "R", "standin.R"))
  log <- file.path(work, paste0("install-", peer, ".log"))
  status <- system2(file.path(R.home("bin"), "R"),
                    c("CMD", "INSTALL", "--no-test-load", "-l", shQuote(library_dir), shQuote(standin)),
                    stdout = log, stderr = log)
  if (status != 0L) {
    cat(readLines(log), sep = "\n")
    stop("could not install the stand-in package ", peer, call. = FALSE)
  }
  cat(sprintf("%s: stand-in re-exports %d of its %d functions from shmr\n", peer,
              length(provided), length(exports)))
}

peer_exports <- function(namespace_file) {
  lines <- readLines(namespace_file)
  found <- regmatches(lines, regexec("^export\\(([^)]+)\\)", lines))
  found <- unlist(lapply(found, function(m) if (length(m) == 2L) strsplit(m[2L], ",")[[1L]]))
  unique(trimws(gsub("\"", "", found)))
}

# --- running -------------------------------------------------------------

test_files_of <- function(spec, test_dir) {
  files <- list.files(test_dir, pattern = "^test-.*\\.[Rr]$")
  if (!is.null(spec$files)) {
    wanted <- paste0("test-", spec$files, ".R")
    absent <- setdiff(wanted, files)
    if (length(absent)) stop("test files not found: ", paste(absent, collapse = ", "), call. = FALSE)
    files <- wanted
  }
  files
}

run_peer_tests <- function(peer, spec, source_dir, library_dir, work) {
  test_dir <- file.path(source_dir, "tests", "testthat")
  libs <- c(library_dir, strsplit(Sys.getenv("R_LIBS"), ":", fixed = TRUE)[[1L]], .libPaths())
  libs <- unique(normalizePath(libs[nzchar(libs)], mustWork = FALSE))
  runner <- file.path(work, "run-one-file.R")
  writeLines(runner_code, runner)
  rows <- list()
  for (file in test_files_of(spec, test_dir)) {
    out <- file.path(work, paste0(peer, "-", file, ".rds"))
    log <- file.path(work, paste0(peer, "-", file, ".log"))
    status <- system2(file.path(R.home("bin"), "Rscript"),
                      c("--vanilla", shQuote(runner), shQuote(test_dir), shQuote(file), peer,
                        shQuote(out)),
                      stdout = log, stderr = log, timeout = file_timeout,
                      env = c(paste0("R_LIBS=", shQuote(paste(libs, collapse = ":"))),
                              "NOT_CRAN=true"))
    if (file.exists(out)) {
      rows[[file]] <- readRDS(out)
    } else {
      tail_lines <- utils::tail(readLines(log, warn = FALSE), 5L)
      rows[[file]] <- data.frame(file = file, test = "(the whole file)", passed = 0L, failed = 1L,
                                 skipped = 0L, message = paste(c(sprintf("exit status %s", status),
                                                                 tail_lines), collapse = " | "))
    }
  }
  do.call(rbind, rows)
}

# Runs one test file in this fresh process and saves one row per test.
runner_code <- '
args <- commandArgs(trailingOnly = TRUE)
test_dir <- args[[1]]; file <- args[[2]]; peer <- args[[3]]; out <- args[[4]]
library(testthat)
filter <- sub("^test-?", "", sub("\\\\.[Rr]$", "", file))
results <- testthat::test_dir(test_dir, filter = paste0("^", gsub(".", "\\\\.", filter, fixed = TRUE), "$"),
                              package = peer, load_package = "installed",
                              reporter = testthat::ListReporter$new(), stop_on_failure = FALSE,
                              stop_on_warning = FALSE)
one_message <- function(e) gsub("\\\\s+", " ", substr(conditionMessage(e), 1, 300))
rows <- lapply(results, function(test) {
  kinds <- vapply(test$results, function(e) class(e)[1], "")
  bad <- test$results[kinds %in% c("expectation_failure", "expectation_error")]
  data.frame(file = basename(test$file), test = test$test,
             passed = sum(kinds == "expectation_success"),
             failed = length(bad), skipped = sum(kinds == "expectation_skip"),
             message = if (length(bad)) one_message(bad[[1]]) else "")
})
rows <- if (length(rows)) do.call(rbind, rows) else
  data.frame(file = file, test = character(), passed = integer(), failed = integer(),
             skipped = integer(), message = character())
saveRDS(rows, out)
# mori\'s corruption and prune tests fabricate /dev/shm/mori_<pid>_* files
# (for this process, or for a process that is gone) and remove them with a
# helper of mori\'s own that the stand-in lacks: remove them here.
fabricated <- Sys.glob("/dev/shm/mori_*_*")
pids <- strtoi(sub("^mori_([0-9a-f]+)_.*$", "\\\\1", basename(fabricated)), 16L)
gone <- !is.na(pids) & (pids == Sys.getpid() | !vapply(pids, function(p) isTRUE(tools::pskill(p, 0L)), TRUE))
unlink(fabricated[gone])
'

# --- counting ------------------------------------------------------------

read_disclosures <- function(path) {
  d <- utils::read.csv(path, stringsAsFactors = FALSE, strip.white = TRUE)
  needed <- c("peer", "file", "test", "reason")
  if (!all(needed %in% names(d)) || any(!nzchar(d$reason))) {
    stop(path, " must have columns peer, file, test, reason, each with a reason", call. = FALSE)
  }
  d
}

classify <- function(results, disclosed) {
  key <- paste(results$file, results$test, sep = "\r")
  listed <- key %in% paste(disclosed$file, disclosed$test, sep = "\r")
  results$failed_disclosed <- ifelse(listed, results$failed, 0L)
  results$failed_open <- ifelse(listed, 0L, results$failed)
  results
}

unused_disclosures <- function(disclosed, results) {
  failing <- paste(results$file, results$test, sep = "\r")[results$failed > 0]
  disclosed[!paste(disclosed$file, disclosed$test, sep = "\r") %in% failing, , drop = FALSE]
}

report_peer <- function(peer, results, verbose) {
  cat(sprintf("%s: %d passed, %d failed, %d disclosed, %d skipped\n", peer, sum(results$passed),
              sum(results$failed_open), sum(results$failed_disclosed), sum(results$skipped)))
  show <- if (verbose) results$failed > 0 else results$failed_open > 0
  for (i in which(show)) {
    r <- results[i, ]
    cat(sprintf("  %s %s: %s\n    %s\n", if (r$failed_open > 0) "FAILED" else "disclosed",
                r$file, r$test, r$message))
  }
}

# --- helpers -------------------------------------------------------------

option_value <- function(args, flag, default) {
  at <- match(flag, args)
  if (is.na(at) || at == length(args)) default else args[[at + 1L]]
}

script_directory <- function() {
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[1L]))) else "tools"
}

main(commandArgs(trailingOnly = TRUE))
