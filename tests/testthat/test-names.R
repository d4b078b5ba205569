test_that("malformed names give NULL", {
  expect_null(map_shared(NULL))
  expect_null(map_shared(1))
  expect_null(map_shared(c("shmr_a", "shmr_b")))
  expect_null(map_shared(NA_character_))
  expect_null(map_shared(""))
  expect_null(map_shared("shmr_"))
  expect_null(map_shared("shmr_../../etc/passwd"))
  expect_null(map_shared("shmr_a/b"))
  expect_null(map_shared("shmr_a[0]"))
  expect_null(map_shared("shmr_a[1,]"))
  expect_null(map_shared("shmr_a[1"))
  expect_null(map_shared("shmr_\u00e9"))
  expect_null(map_shared(paste0("shmr_", strrep("a", 300))))
})

test_that("a well-formed name whose region is missing is a clear error", {
  expect_error(map_shared("shmr_doesNotExist123"), "no shared region named 'shmr_doesNotExist123'")
  # A name without the prefix is a user-chosen name (share(name = )) only
  # when its region exists; otherwise it is no shmr name at all (mori's NULL).
  expect_null(map_shared("data"))
  expect_error(map_shared("shmr_data"), "no shared region named 'shmr_data'")
})

test_that("sub-object paths name parts and map_shared() opens them directly", {
  x <- share(list(a = 1:10 + 0L, b = list(c = letters, d = setNames(1:3 / 2, c("x", "y", "z")))))
  name <- shared_name(x)
  expect_identical(shared_name(x$a), paste0(name, "[1]"))
  expect_identical(shared_name(x$b$c), paste0(name, "[2,1]"))
  expect_identical(map_shared(paste0(name, "[2,1]")), letters)
  expect_identical(map_shared(paste0(name, "[2]")), x$b)
  expect_identical(map_shared(paste0(name, "[2,2]@names")), c("x", "y", "z"))
  expect_error(map_shared(paste0(name, "[3]")), "past the end")
  expect_error(map_shared(paste0(name, "[1,1]")), "not a list")
  expect_error(map_shared(paste0(name, "@nothing")), "no attribute")
})

test_that("names are unique, unguessable and files are private", {
  names <- replicate(20, shared_name(share(1:3 + 0)))
  expect_false(anyDuplicated(names) > 0)
  expect_true(all(grepl("^shmr_[A-Za-z0-9]{22}$", names)))
  x <- share(rnorm(10))
  mode <- file.info(region_file(shared_name(x)))$mode
  expect_identical(format(mode), "600")
})

test_that("shared_info() and shared_regions() describe a region", {
  df <- share(data.frame(a = 1:3))
  info <- shared_info(df)
  expect_identical(info$name, shared_name(df))
  expect_identical(info$backing, "shm")
  expect_identical(info$path, region_file(info$name))
  expect_identical(info$size, file.size(info$path))
  expect_true(info$readonly)
  expect_identical(info$creator_pid, as.numeric(Sys.getpid()))
  expect_identical(info$format_version, 4L)
  expect_identical(info$class, "data.frame")
  expect_null(shared_info(1:3))

  regions <- shared_regions()
  row <- regions[regions$name == info$name, ]
  expect_identical(nrow(row), 1L)
  expect_identical(row$bytes, info$size)
  expect_identical(row$creator_pid, Sys.getpid())
  expect_true(row$creator_alive)
  expect_false(row$persistent)
  expect_s3_class(row$created, "POSIXct")
})

# For a vector, a character vector and a data frame: shares the value under
# a name of the test's choosing and serializes it, then removes that region
# and shares the value reversed under the same name, and calls
# check(value, old, stream, newer, name).
each_name_taken_again <- function(check) {
  name <- paste0("taken_again_", Sys.getpid())
  on.exit(try(remove_shared(name), silent = TRUE), add = TRUE)
  objects <- list(c(1, 2, 3), c("a", NA, "c"), data.frame(u = c(1.5, 2.5), v = c("x", "y")))
  for (value in objects) {
    old <- share(value, name = name, persist = TRUE)
    stream <- serialize(old, NULL)
    expect_identical(unserialize(stream), value)
    expect_true(remove_shared(name))
    newer <- share(rev(value), name = name, persist = TRUE)
    check(value, old, stream, newer, name)
    expect_true(remove_shared(name))
  }
}

test_that("an object whose name a newer region took travels by value, not by that name", {
  skip_on_cran()
  each_name_taken_again(function(value, old, stream, newer, name) {
    # Sent by name, the old object would arrive as the newer one's data.
    expect_identical(unserialize(serialize(old, NULL)), value)
    expect_identical(in_other_process(function(x) x, list(x = old)), value)
    # The newer object is still sent by its name, which leads to it.
    expect_gt(length(grepRaw(name, serialize(newer, NULL), fixed = TRUE)), 0)
    expect_identical(in_other_process(function(x) x, list(x = newer)), rev(value))
  })
})

test_that("a stream written before a name was taken again does not read the newer region", {
  skip_on_cran()
  each_name_taken_again(function(value, old, stream, newer, name) {
    # Read afterwards, here and in another process, the stream names a
    # region that is gone: unavailable, never the newer region's data.
    here <- suppressWarnings(unserialize(stream))
    expect_error(fetch(here), class = "shmr_region_unavailable")
    elsewhere <- in_other_process(function(stream) {
      got <- suppressWarnings(unserialize(stream))
      tryCatch(shmr::fetch(got), error = function(e) c(class(e)[1], conditionMessage(e)))
    }, list(stream = stream))
    expect_identical(elsewhere[1], "shmr_region_unavailable")
    expect_match(elsewhere[2], "newer region")
    # The newer object's own stream reads it.
    expect_identical(unserialize(serialize(newer, NULL)), rev(value))
  })
  # Generated names are never reused: their states carry no such record.
  expect_lte(length(serialize(share(c(1, 2, 3)), NULL)), 128)
})

test_that("a region another process made under a name this process shared before is not this process's", {
  skip_on_cran()
  name <- paste0("owner_test_", Sys.getpid())
  on.exit(remove_shared(name), add = TRUE)
  ours <- share(c(1, 2, 3), name = name)
  expect_true(shared_info(ours)$owner)
  in_other_process(function(name) {
    shmr::remove_shared(name)
    invisible(shmr::share(c(4, 5, 6), name = name, persist = TRUE))
  }, list(name = name))
  theirs <- map_shared(name)
  expect_identical(theirs[], c(4, 5, 6))
  expect_false(shared_info(theirs)$owner)
  # Neither letting go of ours nor closing the map removes their region.
  rm(ours)
  invisible(gc())
  close(theirs)
  expect_identical(map_shared(name)[], c(4, 5, 6))
})

test_that("after an attribute changes, shared_name() is NULL and share() shares the object as it is", {
  m <- share(matrix(as.numeric(1:6), 2))
  before <- shared_name(m)
  expect_identical(shared_name(share(m)), before)  # unchanged: the same region
  dimnames(m) <- list(c("a", "b"), NULL)
  expect_true(is_shared(m))
  expect_null(shared_name(m))
  again <- share(m)
  expect_false(identical(shared_name(again), before))
  v <- share(c(a = 1, b = 2, c = 3))
  names(v) <- c("p", "q", "r")
  expect_null(shared_name(v))
  f <- share(data.frame(a = as.numeric(1:3), b = c("u", "v", "w")))
  expect_false(is.null(shared_name(f$b)))
  class(f) <- c("tbl", "data.frame")
  expect_null(shared_name(f))
  # What another process maps by each new name is the object as it is now.
  # The new shares are kept until it has: a region lives as long as an
  # object of it, and a collection in between would remove it.
  shared_v <- share(v)
  shared_f <- share(f)
  names <- list(m = shared_name(again), v = shared_name(shared_v), f = shared_name(shared_f))
  got <- in_other_process(function(names) lapply(names, function(n) shmr::fetch(shmr::map_shared(n))),
                          list(names = names))
  expect_identical(got$m, fetch(m))
  expect_identical(got$v, c(p = 1, q = 2, r = 3))
  expect_identical(got$f, fetch(f))
  # The old region is still the one the changed object reads, and close() finds it.
  region <- shared_info(m)$name
  expect_identical(region, sub("\\[.*$", "", before))
  close(m)
  expect_false(is_shared(m))
})

test_that("after this process writes to a shared vector, shared_name() is NULL and share() shares what it holds now", {
  v <- share(as.numeric(1:10))
  before <- shared_name(v)
  v[1] <- 0
  s <- share(letters[1:5])
  s[2] <- "Z"
  l <- share(list(a = as.numeric(1:10), b = "x"))
  l$a[1] <- 0
  # Before, each kept its region's name, and share() handed it back as it
  # was: another process mapping that name got the old values.
  expect_null(shared_name(v))
  expect_null(shared_name(s))
  expect_null(shared_name(l))
  again <- share(v)
  expect_false(identical(shared_name(again), before))
  # The new shares are kept: a region lives as long as an object of it.
  shares <- list(v = again, s = share(s), l = share(l))
  names <- lapply(shares, shared_name)
  expect_false(any(vapply(names, is.null, logical(1))))
  got <- in_other_process(function(names) lapply(names, function(n) shmr::fetch(shmr::map_shared(n))),
                          list(names = names))
  expect_identical(got$v, c(0, 2:10))
  expect_identical(got$s, c("a", "Z", "c", "d", "e"))
  expect_identical(got$l, list(a = c(0, 2:10), b = "x"))
  # An unwritten vector keeps its name.
  w <- share(as.numeric(1:10))
  expect_identical(shared_name(share(w)), shared_name(w))
})

test_that("a path given to share(name = ) names its region to list and remove", {
  dir <- tempfile("named-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  path <- file.path(dir, paste0("run", Sys.getpid()))
  s <- share(as.numeric(1:3), name = path, persist = TRUE)
  expect_identical(nrow(shared_regions(path)), 1L)
  # The same name in another directory is not this region.
  elsewhere <- file.path(tempdir(), basename(path))
  expect_identical(nrow(shared_regions(elsewhere)), 0L)
  expect_false(remove_shared(elsewhere))
  # map_shared() takes the path as remove_shared() does.
  expect_identical(map_shared(path), as.numeric(1:3))
  expect_true(is_shared(map_shared(path)))
  expect_null(map_shared(elsewhere))
  expect_true(file.exists(shared_info(s)$path))
  expect_true(remove_shared(path))
  expect_false(file.exists(shared_info(s)$path))
  expect_identical(nrow(shared_regions(path)), 0L)
  expect_null(map_shared(path))
  # No path reaches a region in shared memory, its own file's included.
  y <- share(c(1, 2))
  file <- file.path(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"), shared_name(y))
  expect_false(remove_shared(file))
  expect_null(map_shared(file))
  expect_identical(nrow(shared_regions(file)), 0L)
  expect_identical(y[], c(1, 2))
  expect_identical(nrow(shared_regions(shared_name(y))), 1L)
})
