# Runs one testthat file against the installed package (called by
# tools/run-r-tests.sh, once per file, each in an R process of its own).
#
#   Rscript --vanilla tools/run-r-test-file.R <test file> <status file>
#
# The status file is rewritten as the file runs, so that it still says where
# the file was and what it had counted if the process hangs or dies:
#   passed <n>      tests without failure, error or skip so far
#   failed <n>      tests with a failure or an error (or such a result outside
#                   any test) so far
#   test <name>     the test running, or "(none)"
#   at <file:line>  where its last expectation was
#   failure <text>  one line per failing expectation so far: its test, where
#                   it is and its message on one line (200 characters at most)
#   complete        written last, once the file has run to its end
args <- commandArgs(trailingOnly = TRUE)
test_file_path <- args[1]
status_path <- args[2]
Sys.setenv(NOT_CRAN = "true")
library(testthat)
library(shmr)

StatusReporter <- R6::R6Class("StatusReporter", inherit = testthat::Reporter,
  public = list(
    path = NULL, passed = 0L, failed = 0L, test = NULL, location = "", outcome = "passed",
    failures = character(), complete = FALSE,
    initialize = function(path) {
      super$initialize()
      self$path <- path
      self$write()
    },
    start_test = function(context, test) {
      self$test <- test
      self$outcome <- "passed"
      self$location <- ""
      self$write()
    },
    add_result = function(context, test, result) {
      ref <- result$srcref
      if (!is.null(ref)) {
        self$location <- sprintf("%s:%d", basename(attr(ref, "srcfile")$filename), ref[[1L]])
      }
      failing <- inherits(result, c("expectation_failure", "expectation_error"))
      if (failing) {
        what <- gsub("\\s+", " ", trimws(conditionMessage(result)))
        if (nchar(what) > 200L) what <- paste0(substr(what, 1L, 197L), "...")
        self$failures <- c(self$failures, sprintf("%s (%s): %s", self$test %||% "(outside any test)",
                                                  self$location, what))
      }
      if (is.null(self$test)) {
        if (failing) self$failed <- self$failed + 1L
      } else if (failing) {
        self$outcome <- "failed"
      } else if (inherits(result, "expectation_skip") && self$outcome == "passed") {
        self$outcome <- "skipped"
      }
      self$write()
    },
    end_test = function(context, test) {
      if (self$outcome == "passed") self$passed <- self$passed + 1L
      if (self$outcome == "failed") self$failed <- self$failed + 1L
      self$test <- NULL
      self$write()
    },
    end_reporter = function() {
      self$complete <- TRUE
      self$write()
    },
    write = function() {
      lines <- c(sprintf("passed %d", self$passed), sprintf("failed %d", self$failed),
                 sprintf("test %s", self$test %||% "(none)"), sprintf("at %s", self$location),
                 if (length(self$failures)) paste("failure", self$failures),
                 if (self$complete) "complete")
      # Written whole, then renamed: a reader never sees half a file.
      partial <- paste0(self$path, ".partial")
      writeLines(lines, partial)
      file.rename(partial, self$path)
    }
  )
)
`%||%` <- function(a, b) if (is.null(a)) b else a

reporter <- testthat::MultiReporter$new(list(
  testthat::ProgressReporter$new(show_praise = FALSE, max_failures = Inf),
  StatusReporter$new(status_path)
))
invisible(testthat::test_file(
  file.path("tests/testthat", test_file_path), package = "shmr", load_package = "installed",
  reporter = reporter, stop_on_failure = FALSE
))
