# Workers shmr starts (or borrows) find the packages the caller finds,
# including a library added with .libPaths() only in the caller.

test_that("workers find shmr in a library the caller added with .libPaths()", {
  skip_on_cran()
  lib <- dirname(system.file(package = "shmr"))
  script <- tempfile(fileext = ".R")
  out <- tempfile(fileext = ".rds")
  on.exit(unlink(c(script, out)), add = TRUE)
  writeLines(c(
    "found_without <- nzchar(system.file(package = 'shmr'))",
    sprintf(".libPaths(c(%s, .libPaths()))", deparse(lib)),
    "library(shmr)",
    "psock <- unlist(pool_lapply(1:2, function(i) i * 2))",
    "m <- matrix(as.double(1:6), 2)",
    "temporary <- unlist(memApply(m, 2, function(col) sum(col), NAMESPACE = 'libs_a', MAX.CORES = 1))",
    "cl <- parallel::makeCluster(1)",
    "borrowed <- unlist(memLapply(list(1:2, 3:4), function(el) sum(el), NAMESPACE = 'libs_b', CLUSTER = cl))",
    "parallel::stopCluster(cl)",
    "daemons <- if (requireNamespace('mirai', quietly = TRUE)) {",
    "  pool <- pool_create(1, backend = 'mirai')",
    "  answer <- unlist(pool_lapply(1:2, function(i) i + 1, pool = pool))",
    "  pool_stop(pool)",
    "  answer",
    "}",
    sprintf("saveRDS(list(found_without = found_without, psock = psock, temporary = temporary,
             borrowed = borrowed, daemons = daemons), %s)", deparse(out))
  ), script)
  # shmr is reachable only through .libPaths() in the script: not through
  # R_LIBS (which R CMD check and this suite's runner set), nor through a
  # site library that may hold another copy. Every other package is, through
  # a library of links.
  others <- tempfile("lib-without-shmr")
  dir.create(others)
  on.exit(unlink(others, recursive = TRUE), add = TRUE)
  for (dir in setdiff(.libPaths(), c(lib, .Library))) {
    for (package in setdiff(list.files(dir), c("shmr", list.files(others)))) {
      file.symlink(file.path(dir, package), file.path(others, package))
    }
  }
  # The site's environ file may name site libraries of its own.
  environ <- tempfile("environ")
  file.create(environ)
  on.exit(unlink(environ), add = TRUE)
  log <- suppressWarnings(system2(
    file.path(R.home("bin"), "Rscript"), script,
    env = c("R_LIBS=''", "R_LIBS_USER=''", paste0("R_LIBS_SITE=", shQuote(others)),
            paste0("R_ENVIRON=", shQuote(environ)), paste0("R_ENVIRON_USER=", shQuote(environ))),
    stdout = TRUE, stderr = TRUE
  ))
  expect_true(file.exists(out), label = paste(log, collapse = "\n"))
  if (!file.exists(out)) return(invisible())
  got <- readRDS(out)
  skip_if(got$found_without, "shmr is installed in a library every R process sees")
  expect_identical(got$psock, c(2, 4))
  expect_identical(got$temporary, c(3, 7, 11))
  expect_identical(got$borrowed, c(3L, 7L))
  if (!is.null(got$daemons)) expect_identical(got$daemons, c(2, 3))
})
