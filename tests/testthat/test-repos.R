# The project's scripts install from the repositories R is configured with
# and never write a registry's address of their own.

source_root <- function() {
  root <- normalizePath(file.path(testthat::test_path(), "..", ".."), mustWork = FALSE)
  scripts <- file.path(root, c("tools/install-deps.sh", "bench/install-peers.R"))
  if (all(file.exists(scripts))) root else NULL
}

test_that("no package registry address is written in the project's scripts", {
  root <- source_root()
  skip_if(is.null(root), "needs the source tree")
  files <- c(list.files(file.path(root, c("tools", "bench")), pattern = "\\.(R|sh)$",
                        recursive = TRUE, full.names = TRUE),
             file.path(root, "Makefile"))
  # Built in pieces so that this file does not match itself.
  registry <- paste0("https?://[A-Za-z0-9.-]*(", "cran|r-project", "\\.org|packagemanager|",
                     "r-universe)")
  for (file in files[file.exists(files)]) {
    hits <- grep(registry, readLines(file, warn = FALSE), value = TRUE, ignore.case = TRUE)
    expect_identical(hits, character(), label = file)
  }
})

test_that("install-peers.R stops with a clear message when no repository is set", {
  root <- source_root()
  skip_if(is.null(root), "needs the source tree")
  lib <- tempfile("peers-lib")
  dir.create(lib)
  on.exit(unlink(lib, recursive = TRUE))
  script <- file.path(root, "bench", "install-peers.R")
  for (repos in c("NULL", "c(CRAN = '@CRAN@')")) {
    code <- sprintf("options(repos = %s); .libPaths(c(%s, .libPaths())); source(%s)",
                    repos, deparse(lib), deparse(script))
    out <- system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", "-e", shQuote(code)),
                   stdout = TRUE, stderr = TRUE)
    expect_true(any(grepl("no package repository is set", out)), label = paste(out, collapse = "\n"))
    expect_identical(list.files(lib), character())
  }
})
