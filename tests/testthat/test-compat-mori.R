# Code written for mori: its documented examples, unchanged, and the
# behaviour its documentation promises.

test_that("mori's documented examples give the documented results", {
  # share()
  x <- share(1:100)
  expect_identical(sum(x), 5050L)
  lst <- share(list(a = 1:3, b = letters))
  expect_true(is_shared(lst))

  # is_shared()
  x <- 1:100
  y <- share(x)
  expect_true(is_shared(y))
  expect_false(is_shared(x))

  # map_shared()
  x <- share(1:100)
  nm <- shared_name(x)
  expect_identical(map_shared(nm), 1:100)
  lst <- share(list(a = 1:3, b = letters))
  expect_identical(map_shared(shared_name(lst[[2]])), letters)

  # shared_name()
  x <- share(1:100)
  expect_match(shared_name(x), "^shmr_[A-Za-z0-9]+$")
  lst <- share(list(a = 1:3, b = letters))
  expect_identical(shared_name(lst[[2]]), paste0(shared_name(lst), "[2]"))
  expect_identical(sub("\\[.*$", "", shared_name(lst[[2]])), shared_name(lst))

  # prune_shared(): nothing to prune here, so NULL, invisibly.
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  expect_invisible(prune_shared())
  expect_null(prune_shared())
})

test_that("map_shared() gives NULL for malformed names and errors for missing regions", {
  for (bad in list(NULL, 42, c("a", "b"), NA_character_, "", "/mori_abc_1",
                   "shmr_abc[", "shmr_abc[0]", "shmr_abc[1,,2]", "shmr_abc[x]", "shmr_a b")) {
    expect_null(map_shared(bad), label = deparse(bad))
  }
  expect_error(map_shared("shmr_noSuchRegionHere42"), "no shared region named")
  expect_error(map_shared("shmr_noSuchRegionHere42[1]"), "no shared region named")
  lst <- share(list(a = 1:3, b = list(c = "x")))
  expect_error(map_shared(paste0(shared_name(lst), "[3]")), "past the end")
  expect_error(map_shared(paste0(shared_name(lst), "[1,1]")), "not a list")
})

test_that("share() is idempotent on every kind of shared object", {
  lst <- share(list(a = 1:3 + 0L, b = letters, c = list(d = 2.5)))
  name <- shared_name(lst)
  expect_identical(shared_name(share(lst)), name)
  expect_identical(shared_name(share(lst$b)), paste0(name, "[2]"))
  expect_identical(shared_name(share(lst$c)), paste0(name, "[3]"))
  mapped <- map_shared(name)
  expect_identical(shared_name(share(mapped)), name)
  x <- share(rnorm(10))
  expect_identical(share(x), x)
  expect_identical(shared_name(share(x)), shared_name(x))
  # Objects that are not data come back unchanged, unshared.
  f <- function(v) v + 1
  expect_identical(share(f), f)
  expect_null(share(NULL))
  expect_false(is_shared(share(quote(a + b))))
})

test_that("sub-object names open the same parts in another process", {
  lst <- share(list(a = 1:3 + 0L, b = list(c = letters, d = c(x = 1.5))))
  names <- c(shared_name(lst$b$c), shared_name(lst$b$d), paste0(shared_name(lst$b$d), "@names"))
  got <- in_other_process(function(names) {
    parts <- lapply(names, map_shared)
    list(parts = parts, shared = vapply(parts, is_shared, TRUE), names = lapply(parts, shared_name))
  }, list(names = names))
  expect_identical(got$parts, list(letters, c(x = 1.5), "x"))
  expect_true(all(got$shared))
  expect_identical(got$names[1:2], as.list(names[1:2]))
})

test_that("a /dev/shm too small for the object is no crash (mori: bus error)", {
  skip_on_cran()
  skip_if_not(small_tmpfs_available(), "cannot mount a private tmpfs here")
  got <- in_small_shm(c(
    "library(shmr)",
    "x <- suppressMessages(share(as.double(1:1e6)))",
    "strict <- tryCatch(share(as.double(1:1e6), backing = 'shm'), error = conditionMessage)",
    "list(sum = sum(x), backing = shared_info(x)$backing, strict = strict)"
  ))
  expect_identical(got$sum, sum(as.double(1:1e6)))
  expect_identical(got$backing, "mmap")
  expect_match(got$strict, "not enough space")
})

test_that("a bare name is a shmr name only when its region exists (mori: NULL for junk)", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  # mori's own examples of names that are not names.
  expect_null(map_shared("junk"))
  expect_null(map_shared("not_a_mori_name"))
  expect_null(map_shared("junk[1]"))
  # The same bare name, once a region of that name exists, opens it.
  x <- share(list(a = 1:3 + 0L, b = "z"), name = "junk")
  expect_identical(map_shared("junk"), list(a = 1:3, b = "z"))
  expect_identical(map_shared("junk[2]"), "z")
  expect_error(map_shared("junk[3]"), "past the end")
  # ... from another process too, and not after it is gone.
  expect_identical(in_other_process(function() map_shared("junk")$b), "z")
  close(x)
  expect_null(map_shared("junk"))
  expect_error(map_shared("shmr_junk"), "no shared region named 'shmr_junk'")
})

test_that("share(1:1e15) is refused with shmr's error, before anything is allocated", {
  got <- in_other_process(function() {
    before <- sum(gc(reset = TRUE)[, 2])
    error <- tryCatch(share(1:1e15), error = conditionMessage)
    strict <- tryCatch(share(1:1e15, backing = "shm"), error = conditionMessage)
    list(error = error, strict = strict, grown_mb = sum(gc()[, 6]) - before,
         left = list.files(file.path(tempdir(), "shmr"), all.files = TRUE, no.. = TRUE))
  })
  expect_match(got$error, "^shmr: not enough space .* for a region of 8000000000000[0-9]* bytes")
  expect_match(got$strict, "^shmr: not enough space .* for a region of 8000000000000[0-9]* bytes")
  # R's "cannot allocate vector of size 7450580.6 Gb" came from expanding it.
  expect_lt(got$grown_mb, 50)
  expect_identical(got$left, character())
})

test_that("a compact sequence is written into the region without being expanded first", {
  got <- in_other_process(function() {
    n <- 5e7 # 200 MB as integers, 400 MB as doubles
    x <- 1:n                   # R's compact integer sequence
    y <- 3e9:(3e9 + n - 1)     # past the integer range: a compact double sequence
    before <- sum(gc(reset = TRUE)[, 2])
    sx <- share(x)
    sy <- share(y)
    list(grown_mb = sum(gc()[, 6]) - before, sums = c(sum(sx), sum(sy)),
         ends = c(sx[n], sy[n]), types = c(typeof(sx), typeof(sy)),
         shared = c(is_shared(sx), is_shared(sy)), same = identical(fetch(sx[1:1000]), 1:1000))
  })
  # Expanding either would take 200 or 400 MB of R's heap.
  expect_lt(got$grown_mb, 50)
  expect_identical(got$sums, c(sum(as.double(1:5e7)), sum(3e9:(3e9 + 5e7 - 1))))
  expect_identical(got$ends, c(5e7, 3e9 + 5e7 - 1))
  expect_identical(got$types, c("integer", "double"))
  expect_true(all(got$shared))
  expect_true(got$same)
})

test_that("a shared list survives serialize(): its parts stay shared (mori's test-nested.R)", {
  x <- share(list(outer = list(inner = 1:10 + 0L, s = letters)))
  sub <- x$outer
  buf <- serialize(sub, NULL)
  expect_lt(length(buf), 1000)
  got <- in_other_process(function(buf) {
    y <- unserialize(buf)
    list(inner = y$inner[], s = y$s, shared = c(is_shared(y$inner), is_shared(y$s)),
         names = c(shared_name(y$inner), shared_name(y$s)))
  }, list(buf = buf))
  expect_identical(got$inner, 1:10)
  expect_identical(got$s, letters)
  expect_true(all(got$shared))
  expect_identical(got$names, paste0(shared_name(x), c("[1,1]", "[1,2]")))
})

test_that("a mapped object whose name was given to a new region has no name, and share() shares it anew", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  in_other_process(function() invisible(share(c(1, 2, 3), name = "taken_again", persist = TRUE)))
  x <- map_shared("taken_again")
  remove_shared("taken_again")
  in_other_process(function() invisible(share(c(7, 8, 9), name = "taken_again", persist = TRUE)))
  # The name now opens the new region: handing it out for x would give
  # another process 7, 8, 9 for x's 1, 2, 3.
  expect_identical(map_shared("taken_again"), c(7, 8, 9))
  expect_null(shared_name(x))
  shared <- share(x)
  expect_identical(in_other_process(function(name) map_shared(name),
                                    list(name = shared_name(shared))), c(1, 2, 3))
  close(shared)
  remove_shared("taken_again")
  expect_identical(shm_files(), character())
})

test_that("a mapped object whose region prune_shared() removed goes to other processes by value, and share() shares it anew", {
  skip_without_callr()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  name_file <- tempfile()
  creator <- callr::r_bg(function(name_file) {
    library(shmr)
    x <- share(list(a = c(1.5, 2.5), b = letters))
    writeLines(shared_name(x), paste0(name_file, ".tmp"))
    file.rename(paste0(name_file, ".tmp"), name_file)
    Sys.sleep(600)
  }, args = list(name_file = name_file))
  on.exit(creator$kill(), add = TRUE)
  expect_true(wait_for_file(name_file, creator))
  y <- map_shared(readLines(name_file))
  # The creator dies without removing its region; prune_shared() removes it.
  creator$kill()
  creator$wait()
  expect_true(shared_name(y) %in% prune_shared())
  # y still reads its mapping, but its name opens nothing: sent to another
  # process (a worker's argument) it must travel by value...
  expect_identical(in_other_process(function(v) v, list(v = y)),
                   list(a = c(1.5, 2.5), b = letters))
  # ...and share() must not hand y back as shared under that name.
  shared <- share(y)
  expect_identical(in_other_process(function(name) map_shared(name),
                                    list(name = shared_name(shared))),
                   list(a = c(1.5, 2.5), b = letters))
  close(shared)
  expect_identical(shm_files(), character())
})
