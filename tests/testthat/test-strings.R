# Shared character vectors: every string R gets from a view is kept alive by
# the view (R may allocate before it is done with it), made once, and
# repeated strings are stored once in the region (dictionary layout).

test_that("substr() and friends on a mapped character vector survive the garbage collector", {
  # R frees an unreferenced string at the next allocation; with glibc's
  # perturbation, freed memory is overwritten, so a string that nothing
  # kept alive comes back changed (or crashes the process). Strings of 300
  # bytes are allocated by malloc, one by one.
  strs <- vapply(1:300, function(i) paste0(sprintf("%04d", i), strrep(letters[i %% 26 + 1], 296)), "")
  s <- share(c(strs, NA))
  skip_without_callr()
  got <- callr::r(function(name) {
    library(shmr)
    y <- map_shared(name)
    gctorture(TRUE)
    out <- list(substr = substr(y, 2, 250), sub = sub("^0", "x", y), toupper = toupper(y[1:40]),
                paste = paste0(y[1:40], "!"), chartr = chartr("a", "A", y[1:40]))
    gctorture(FALSE)
    out
  }, list(name = shared_name(s)),
  env = c(callr::rcmd_safe_env(), MALLOC_PERTURB_ = "165",
          GLIBC_TUNABLES = "glibc.malloc.tcache_count=0"))
  x <- c(strs, NA)
  expect_identical(got$substr, substr(x, 2, 250))
  expect_identical(got$sub, sub("^0", "x", x))
  expect_identical(got$toupper, toupper(x[1:40]))
  expect_identical(got$paste, paste0(x[1:40], "!"))
  expect_identical(got$chartr, chartr("a", "A", x[1:40]))
})

test_that("string views pass their tests under gctorture()", {
  x <- c("a", NA, "", "caf\u00e9", "\u65e5\u672c", "b", "a")
  x <- c(x, rep(c("red", "green", NA), 20))  # long enough for the dictionary layout
  s <- share(x)
  y <- map_shared(shared_name(s))
  gctorture(TRUE)
  got <- list(elements = vapply(seq_along(y), function(i) y[[i]], ""), subset = y[c(4, 2, 1)],
              nchar = nchar(y), unique = unique(y), sorted = sort(y, method = "radix"),
              factor = factor(y), match = match(x, y), all = y[])
  gctorture(FALSE)
  expect_identical(got$elements, x)
  expect_identical(got$subset, x[c(4, 2, 1)])
  expect_identical(got$nchar, nchar(x))
  expect_identical(got$unique, unique(x))
  expect_identical(got$sorted, sort(x, method = "radix"))
  expect_identical(got$factor, factor(x))
  expect_identical(got$match, match(x, x))
  expect_identical(got$all, x)
  # Numbers read from the region (packed and dictionary layouts).
  for (nums in list(c("1.5", NA, " 2 ", "", "-3"), rep(c("4", "5", NA), 30))) {
    # The share is kept: a region lives as long as an object of it.
    shared_nums <- share(nums)
    v <- map_shared(shared_name(shared_nums))
    gctorture(TRUE)
    got <- list(numeric = as.numeric(v), integer = as.integer(v))
    gctorture(FALSE)
    expect_identical(got$numeric, as.numeric(nums))
    expect_identical(got$integer, as.integer(nums))
  }
})

test_that("short subsets of a view that has read nothing yet agree with an ordinary vector", {
  # Up to 16 elements of a fresh view are made straight into the result (no
  # cache); longer subsets and later reads go through the view's cache.
  packed <- c("a", NA, "", "caf\u00e9", "\u65e5\u672c", paste0("p", 1:200))
  dictionary <- rep(c("red", "green", NA, "caf\u00e9"), 30)
  indices <- list(5L, 2L, c(4, 2, 1), c(1L, NA, 3L), c(300, 2.9, 0.5, -0.5 + 4), c(NA_real_, 1e15),
                  1:16, 1:17, c(3L, 3L, 3L))
  for (x in list(packed, dictionary)) {
    s <- share(x)
    for (i in indices) {
      y <- map_shared(shared_name(s))
      gctorture(TRUE)
      got <- y[i]
      gctorture(FALSE)
      expect_identical(got, x[i])
      expect_identical(Encoding(got), Encoding(x[i]))
      # The view still reads every element, now through its cache.
      expect_identical(y[rev(seq_along(x))], rev(x))
    }
  }
})

test_that("a string view keeps what R reads and writes, as an ordinary vector would", {
  x <- paste0("w", 1:5000)
  s <- share(x)
  y <- map_shared(shared_name(s))
  expect_identical(y[4999], "w4999")
  y[2] <- "changed"
  x[2] <- "changed"
  expect_identical(y, x)
  expect_identical(unserialize(serialize(y, NULL)), x)
  z <- map_shared(shared_name(s))
  expect_identical(z[2], "w2")  # the region never changes
  expect_identical(sort(z), sort(paste0("w", 1:5000)))
})

test_that("repeated strings are stored once: a low-cardinality vector takes a fraction of R's size", {
  n <- 1e6
  x <- sample(c(letters, NA), n, TRUE)
  s <- share(x)
  # One byte per element plus the dictionary; the packed layout took 9 bytes
  # per element plus the strings, more than R's own 8 bytes per pointer.
  expect_lt(shared_info(s)$size, 1.2 * n)
  expect_identical(s[], x)
  moderate <- sample(sprintf("level_%05d", 1:40000), n, TRUE)
  sm <- share(moderate)
  expect_lt(shared_info(sm)$size, 3.5 * n)
  expect_identical(sm[], moderate)
  # Distinct strings keep the packed layout.
  distinct <- sprintf("id_%07d", sample(n))
  sd <- share(distinct)
  expect_gt(shared_info(sd)$size, 9 * n)
  expect_identical(sd[], distinct)
})

test_that("factor(), table(), unique() and match() of a dictionary vector agree in a consumer", {
  x <- sample(c("alpha", "beta", "gamma", NA, "", "caf\u00e9"), 2e5, TRUE)
  s <- share(list(x = x, levels = c("beta", "alpha")))
  got <- in_other_process(function(name) {
    v <- map_shared(name)
    y <- v$x
    list(factor = factor(y), table = table(y, useNA = "ifany", dnn = NULL), unique = unique(y),
         match = match(y, v$levels), na = anyNA(y), counts = tabulate(match(y, unique(y))),
         sorted = sort(y, method = "radix"), encodings = Encoding(unique(y)))
  }, list(name = shared_name(s)))
  expect_identical(got$factor, factor(x))
  expect_identical(got$table, table(x, useNA = "ifany", dnn = NULL))
  expect_identical(got$unique, unique(x))
  expect_identical(got$match, match(x, c("beta", "alpha")))
  expect_true(got$na)
  expect_identical(got$counts, tabulate(match(x, unique(x))))
  expect_identical(got$sorted, sort(x, method = "radix"))
  expect_identical(got$encodings, Encoding(unique(x)))
})

test_that("a consumer's character operations give an ordinary vector's results", {
  x <- sprintf("item_%07d_%s", sample(5e6, 2e5, TRUE), sample(letters, 2e5, TRUE))
  x[c(7, 99)] <- NA
  s <- share(x)
  got <- in_other_process(function(name) {
    y <- map_shared(name)
    list(nchar = nchar(y), grepl = grepl("_a$", y), unique = unique(y), match = match(y, y[1:100]),
         sorted = sort(y, method = "radix"), substr = substr(y, 1, 9), na = anyNA(y))
  }, list(name = shared_name(s)))
  expect_identical(got$nchar, nchar(x))
  expect_identical(got$grepl, grepl("_a$", x))
  expect_identical(got$unique, unique(x))
  expect_identical(got$match, match(x, x[1:100]))
  expect_identical(got$sorted, sort(x, method = "radix"))
  expect_identical(got$substr, substr(x, 1, 9))
  expect_true(got$na)
})

test_that("a region written by format version 1 still maps; an unknown version is refused clearly", {
  dir <- tempfile("shm")
  dir.create(dir, mode = "0700")
  got <- in_other_process(function(dir) {
    Sys.setenv(SHMR_SHM_DIR = dir)
    x <- share(as.numeric(1:1000), name = "v2")
    bytes <- readBin(file.path(dir, "shmr_v2"), "raw", file.size(file.path(dir, "shmr_v2")))
    write_as <- function(version, name) {
      b <- bytes
      b[9:12] <- as.raw(c(version, 0, 0, 0))
      # Version 1 headers are 128 bytes: the replica record's place is then
      # padding before the node table.
      if (version == 1) b[13:16] <- as.raw(c(128, 0, 0, 0))
      path <- file.path(dir, name)
      writeBin(b, path)
      Sys.chmod(path, "0600")
    }
    write_as(1, "shmr_v1")
    write_as(5, "shmr_v5")
    v1 <- map_shared("shmr_v1")
    # Plain copies: a view would travel by name, and this directory is private.
    list(v1 = fetch(v1), sorted_v1 = fetch(sort(v1)), info = shared_info(v1)$format_version,
         v5 = tryCatch(map_shared("shmr_v5"), error = conditionMessage))
  }, list(dir = dir))
  unlink(dir, recursive = TRUE)
  expect_identical(got$v1, as.numeric(1:1000))
  expect_identical(got$sorted_v1, as.numeric(1:1000))
  expect_identical(got$info, 1L)
  expect_match(got$v5, "format version is 5, this build of shmr reads versions 1 to 4")
})

test_that("an ALTREP character vector keeps its attributes when shared", {
  # R's deferred strings (as.character() of numbers) hold their attributes on
  # the ALTREP object; so does the wrapper R puts around a vector of 64 or
  # more elements to change its attributes without copying it.
  view <- share(sprintf("v%d", 1:64))
  wrapped <- view
  attr(wrapped, "foo") <- "bar"
  objects <- list(
    deferred = setNames(as.character(1:3), c("a", "b", "c")),
    deferred_double = structure(as.character(c(1.5, 2.5)), foo = "bar"),
    wrapped_view = wrapped,
    in_list = list(a = setNames(as.character(1:3), c("a", "b", "c")))
  )
  for (name in names(objects)) {
    shared <- share(objects[[name]])
    expect_identical(shared, objects[[name]], label = name)
    expect_identical(map_shared(shared_name(shared)), objects[[name]], label = name)
  }
  # Kept until the other process has mapped them (a collection in between
  # would remove their regions).
  shared <- lapply(objects, share)
  names <- lapply(shared, shared_name)
  got <- in_other_process(function(names) lapply(names, function(n) shmr::fetch(shmr::map_shared(n))),
                          list(names = names))
  expect_identical(got, objects)
})
