# C functions that write into a vector in place, as other packages' C code
# does (data.table's set(), a .Call that fills a buffer), and R's deep copy:
# R copies a list element before changing it, so only C code can write into
# an element of a shared list. Compiled once per R session with R CMD SHLIB; a machine that
# builds shmr from source has the compiler.
in_place_writers <- local({
  writers <- NULL
  function() {
    if (!is.null(writers)) return(writers)
    dir <- tempfile("shmr_c_writes")
    dir.create(dir)
    source_file <- file.path(dir, "shmr_c_writes.c")
    writeLines(c(
      "#include <Rinternals.h>",
      "SEXP shmr_test_write_double(SEXP x, SEXP i, SEXP v) {",
      "  REAL(x)[asInteger(i) - 1] = asReal(v);",
      "  return R_NilValue;",
      "}",
      "SEXP shmr_test_write_double_ro(SEXP x, SEXP i, SEXP v) {",
      "  ((double *) DATAPTR_RO(x))[asInteger(i) - 1] = asReal(v);",
      "  return R_NilValue;",
      "}",
      "SEXP shmr_test_write_string(SEXP x, SEXP i, SEXP v) {",
      "  SET_STRING_ELT(x, asInteger(i) - 1, STRING_ELT(v, 0));",
      "  return R_NilValue;",
      "}",
      "SEXP shmr_test_write_string_pointer(SEXP x, SEXP i, SEXP v) {",
      "  ((SEXP *) DATAPTR(x))[asInteger(i) - 1] = STRING_ELT(v, 0);",
      "  return R_NilValue;",
      "}",
      "SEXP shmr_test_set_attribute(SEXP x, SEXP name, SEXP value) {",
      "  setAttrib(x, install(CHAR(STRING_ELT(name, 0))), value);",
      "  return R_NilValue;",
      "}",
      "SEXP shmr_test_deep_copy(SEXP x) { return duplicate(x); }"
    ), source_file)
    output <- suppressWarnings(system2(file.path(R.home("bin"), "R"),
                                       c("CMD", "SHLIB", shQuote(source_file)),
                                       stdout = TRUE, stderr = TRUE))
    library_file <- sub("\\.c$", .Platform$dynlib.ext, source_file)
    if (!file.exists(library_file)) {
      testthat::skip(paste(c("cannot compile the C test helper:", output), collapse = "\n"))
    }
    dll <- dyn.load(library_file)
    symbol <- function(name) getNativeSymbolInfo(name, dll)
    writers <<- list(
      double = function(x, i, value) {
        invisible(.Call(symbol("shmr_test_write_double"), x, as.integer(i), as.double(value)))
      },
      # Through the read-only pointer, as Rcpp writes (x[i] = v on a
      # NumericVector argument).
      double_ro = function(x, i, value) {
        invisible(.Call(symbol("shmr_test_write_double_ro"), x, as.integer(i), as.double(value)))
      },
      string = function(x, i, value) {
        invisible(.Call(symbol("shmr_test_write_string"), x, as.integer(i), as.character(value)))
      },
      # Through the data pointer, as R's own sort of a character vector
      # writes (`v` must stay referenced: no write barrier).
      string_pointer = function(x, i, value) {
        invisible(.Call(symbol("shmr_test_write_string_pointer"), x, as.integer(i), value))
      },
      # On `x` itself, not a copy, as data.table's setattr() does.
      set_attribute = function(x, name, value) {
        invisible(.Call(symbol("shmr_test_set_attribute"), x, as.character(name), value))
      },
      # R's duplicate(), which C code calls; R code has no way to ask for it.
      deep_copy = function(x) .Call(symbol("shmr_test_deep_copy"), x)
    )
    writers
  }
})
