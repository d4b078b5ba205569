# Runs the testthat suite against the installed package and writes
# "<passed> <failed>" (counted per test) to the file named by argument 1.
args <- commandArgs(trailingOnly = TRUE)
out_file <- args[1]
Sys.setenv(NOT_CRAN = "true")
library(testthat)
library(shmr)
results <- testthat::test_dir(
  "tests/testthat", package = "shmr", load_package = "installed",
  reporter = testthat::ProgressReporter$new(show_praise = FALSE, max_failures = Inf),
  stop_on_failure = FALSE
)
df <- as.data.frame(results)
failed <- sum(df$failed > 0 | df$error)
passed <- sum(!(df$failed > 0 | df$error) & !df$skipped)
writeLines(sprintf("%d %d", passed, failed), out_file)
