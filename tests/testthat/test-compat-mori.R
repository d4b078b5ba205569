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
