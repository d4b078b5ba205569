# Hostile arguments to the exported functions: each is refused with an R
# error that names the argument and says what was wrong with it, leaving no
# region behind. (Found by a sweep that called every exported function with
# NULL, NA, wrong types and out-of-range values in a process of its own;
# none crashed or hung, the cases here gave unclear errors or wrong values.)

error_message <- function(expr) {
  tryCatch({
    expr
    NA_character_
  }, error = conditionMessage)
}

test_that("an argument with a fixed set of values is refused by its name", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  x <- share(c(1, 2, 3))
  seg <- segment_create(8)
  on.exit(segment_close(seg), add = TRUE)
  refusals <- list(
    backing = function() share(1, backing = NA),
    backing = function() share(1, backing = c("shm", "mmap")),
    cycle = function() share(1, deep = TRUE, cycle = 1),
    mode = function() share(1, deep = TRUE, mode = 1),
    backing = function() segment_create(8, backing = "disk"),
    backing = function() segment_open("any", backing = FALSE),
    advice = function() segment_advise(seg, NA_character_),
    advice = function() shared_advise(x, c("random", "normal")),
    type = function() shared_buffer(list("double"), 3),
    backing = function() share_open("any", backing = 2),
    cow = function() as_shared(1, cow = NA),
    backend = function() pool_create(1, backend = "fork"),
    on_error = function() pool_lapply(1:2, identity, on_error = TRUE)
  )
  for (k in seq_along(refusals)) {
    message <- error_message(refusals[[k]]())
    expect_match(message, sprintf("^`%s` should be one of \"", names(refusals)[k]),
                 info = deparse(body(refusals[[k]])))
    expect_false(grepl("'arg'", message, fixed = TRUE), info = deparse(body(refusals[[k]])))
  }
  expect_match(error_message(share(1, backing = NA)), "not NA$")
  expect_match(error_message(share(1, backing = "disk")), "not 'disk'$")
  # As match.arg() takes them: a prefix, or NULL for the first choice.
  expect_identical(shared_info(share(c(4, 5), backing = "sh"))$backing, "shm")
  expect_identical(shared_info(share(c(4, 5), backing = NULL))$backing,
                   shared_info(share(c(4, 5)))$backing)
  expect_identical(segment_advise(seg, "seq"), segment_advise(seg, "sequential"))
  invisible(gc())
  expect_length(shm_files(), 2L)
})

test_that("a bad region name is refused naming the argument and the value", {
  expect_error(share(1, name = "a b"), "`name` is 'a b', but a region name must be")
  expect_error(share(1, name = NA_character_), "`name` is NA, but a region name must be")
  expect_error(segment_create(8, name = 7), "`name` is 7, but a region name must be")
  expect_error(segment_open(""), "`path` is '', but a region name must be")
  # A directory is not read as the region named by its last part.
  expect_error(segment_open(paste0(tempdir(), "/")), "`path` ends with '/'")
  expect_error(share(1, name = strrep("n", 5000)), "`name` is 'n{57}\\.\\.\\.'")
  # '.' and '..' are made of allowed characters: the message says why they are refused.
  expect_error(share(1, name = "."), "`name` is '.', but .*other than '.' and '..'")
  expect_error(segment_create(8, name = ".."), "`name` is '..', but .*other than '.' and '..'")
})

test_that("a buffer refuses a value for its type in one message, and a logical one any number but 0 and 1", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  message <- error_message(shared_buffer("double", 3, init = "abc"))
  expect_identical(lengths(regmatches(message, gregexpr("cannot be stored", message))), 1L)
  expect_match(message, "^`init` \\(abc\\) cannot be stored in a buffer of type double: NAs")
  b <- shared_buffer("integer", 2, init = 0L)
  message <- error_message(b[1] <- 3e9)
  expect_identical(lengths(regmatches(message, gregexpr("cannot be stored", message))), 1L)
  expect_identical(b[], c(0L, 0L))

  expect_error(shared_buffer("logical", 3, init = 2), "`init` \\(2\\) cannot be stored .* other than 0 or 1")
  flags <- shared_buffer("logical", 3)
  expect_error(flags[2] <- 0.5, "a value assigned cannot be stored in a buffer of type logical")
  expect_error(flags[] <- c(1, -3, 0), "other than 0 or 1")
  expect_identical(flags[], c(NA, NA, NA))
  flags[] <- c(0, 1, NA)
  expect_identical(flags[], c(FALSE, TRUE, NA))
  flags[[1]] <- 1L
  expect_identical(flags[], c(TRUE, TRUE, NA))
})

test_that("share_open() checks `size` before comparing it", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  x <- share(c(1, 2, 3), name = "bad_input_size")
  for (size in list(list(), NA, "a", c(1, 2), -1, sum)) {
    expect_error(share_open("bad_input_size", size = size),
                 "^`size` must be NULL or a single number of bytes, not ", info = deparse(size))
  }
  expect_error(share_open("bad_input_size", size = 1), "has .* bytes, not 1")
  expect_identical(share_open("bad_input_size", size = shared_info(x)$size)[], c(1, 2, 3))
})

test_that("a path longer than any path is refused, or stands for no region, without R's warning", {
  long <- paste0("/", strrep("d/", 2500), "x")
  expect_silent(regions <- shared_regions(long))
  expect_identical(nrow(regions), 0L)
  expect_silent(expect_false(remove_shared(long)))
  expect_error(share(1, backing = "mmap", path = long), "`path` is a path of 5002 bytes")
})

test_that("maps refuse an X that is no vector and a FUN that names no function", {
  expect_error(pool_lapply(sum, identity), "^`X` must be a vector or a list, not a function$")
  expect_error(pool_sapply(as.name("a"), identity), "`X` must be a vector or a list, not .*symbol")
  expect_error(pool_lapply(1:2, "no_such_function_anywhere"),
               "`FUN` names no function: there is no function called 'no_such_function_anywhere'")
  expect_error(pool_sapply(c("a", "b"), nchar, USE.NAMES = NA), "`USE.NAMES` must be TRUE or FALSE")
  expect_error(pool_sapply(1:2, identity, simplify = "matrix"),
               "`simplify` must be TRUE, FALSE or \"array\", not 'matrix'")
  expect_error(pool_create(1, rss_limit = "0"), "`rss_limit` must be NULL, a number of bytes")
  expect_error(memLapply(1:2, identity, MAX.CORES = 0), "`MAX.CORES` must be NULL or a whole number")
  expect_error(memLapply(1:2, identity, MAX.CORES = Inf), "`MAX.CORES` must be NULL or a whole number")
  # More workers than memory or connections allow: refused before any starts.
  expect_error(memLapply(1:2, identity, MAX.CORES = 1e6), "^`MAX.CORES` = 1,000,000 .*workers")
  expect_error(memLapply(1:2, "no_such_function_anywhere"), "`FUN` names no function")
  expect_error(memApply(NULL, 1, sum), "memApply\\(\\): `X` must be a matrix, or the name of one, not NULL")
  expect_error(memApply(sum, 2, sum), "not a function$")
})

test_that("a pool takes FUN by the name of a local function, checks envir, and close() stops it", {
  skip_on_cran()
  skip_without_callr()
  pool <- pool_create(1)
  on.exit(pool_stop(pool), add = TRUE)
  local_map <- function() {
    twice <- function(v) v * 2
    pool_sapply(1:3, "twice", pool = pool)
  }
  expect_identical(local_map(), c(2, 4, 6))
  expect_identical(pool_sapply(c(a = 4, b = 9), "sqrt", pool = pool), c(a = 2, b = 3))
  v <- 5
  expect_error(pool_dispatch(1, quote(v + 1), envir = list(v = 1), pool = pool),
               "^`envir` must be an environment, not an object of type list$")
  expect_identical(pool_dispatch(1, quote(v + 1), pool = pool), 6)
  expect_null(close(pool))
  expect_true(pool$stopped)
  expect_null(pool_get())
  expect_error(pool_status(pool), "the pool was stopped")
})

test_that("mutualinfo() checks its flags before it needs a package", {
  expect_error(mutualinfo(1:10, 1:10, useMPMI = NA), "^`useMPMI` must be TRUE or FALSE$")
  expect_error(mutualinfo(1:10, 1:10, isXDiscrete = "yes"), "^`isXDiscrete` must be TRUE or FALSE$")
  expect_error(mutualinfo(1:10, 1:10, na.rm = c(TRUE, TRUE)), "^`na.rm` must be TRUE or FALSE$")
  expect_error(mutualinfo(1:10, 1:10, eps = NA), "^`eps` must be a single number >= 0, not NA$")
})

test_that("allocate_from_shm() refuses attributes of obj that do not fit, and leaves no region", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  obj <- copy2shm(1:3, "/bad_input_attributes")
  obj$attributes <- list(dim = c(5L, 5L))
  expect_error(allocate_from_shm(obj),
               "allocate_from_shm\\(\\): the attributes of `obj` do not fit '/bad_input_attributes': dims")
  expect_length(shm_files(), 0L)
})
