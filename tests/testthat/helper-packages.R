# Installs a small package made for a test into a library of its own and
# returns that library: `exports` go into its NAMESPACE, `code` (lines of R)
# into its one R file.
install_test_package <- function(name, title, exports, code) {
  source_dir <- file.path(tempfile("pkg-source"), name)
  dir.create(file.path(source_dir, "R"), recursive = TRUE)
  writeLines(c(paste("Package:", name), "Version: 0.1", paste("Title:", title),
               "Description: A test package.", "License: GPL-3",
               "Authors@R: person('A', 'B', role = c('aut', 'cre'), email = 'a@b.c')"),
             file.path(source_dir, "DESCRIPTION"))
  writeLines(sprintf("export(%s)", exports), file.path(source_dir, "NAMESPACE"))
  writeLines(code, file.path(source_dir, "R", "code.R"))
  lib <- tempfile("pkg-lib")
  dir.create(lib)
  # R CMD check's R_TESTS names a startup file relative to its own directory.
  log <- suppressWarnings(system2(file.path(R.home("bin"), "R"), env = "R_TESTS=",
                                  args = c("CMD", "INSTALL", "--no-test-load", paste0("--library=", shQuote(lib)),
                                           shQuote(source_dir)), stdout = TRUE, stderr = TRUE))
  unlink(dirname(source_dir), recursive = TRUE)
  if (!dir.exists(file.path(lib, name))) stop(paste(log, collapse = "\n"))
  lib
}
