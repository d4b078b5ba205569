# The ALTREP methods R consults before reading a shared vector element by
# element: x[i] (Extract_subset), sortedness and NA-freedom recorded by the
# writer (Is_sorted, No_NA), conversions (Coerce). Results must be those of
# ordinary vectors, whatever the data and whatever R does to the object.

special_doubles <- c(3.5, NA, -0, 0, NaN, Inf, -Inf, 1e-300, -2, 7)

# Every index form R turns into positions before Extract_subset is called.
index_forms <- function(n) {
  list(
    integer = c(2L, 1L, n, 3L), repeated = rep(2L, 5), na_integer = c(1L, NA, 3L),
    out_of_range = c(n + 1L, 1L, 1000000L), double = c(1.9, 2, 0.5, n + 0.5),
    na_double = c(NA, NaN, Inf, -Inf, 1), zero = c(0L, 2L, 0L), negative = c(-1L, -n),
    logical = rep(c(TRUE, FALSE, NA), length.out = n), recycled = c(TRUE, FALSE),
    empty = integer(0), all = seq_len(n), reversed = rev(seq_len(n)), range = 2:(n - 1),
    big_double = c(2^31 + 1, 3), compact = 1:3
  )
}

test_that("x[i] of every kind and index form is identical to an ordinary vector's", {
  vectors <- list(
    logical = c(TRUE, NA, FALSE, TRUE, FALSE, NA, TRUE, TRUE, FALSE, FALSE),
    integer = c(5L, NA, -3L, .Machine$integer.max, -.Machine$integer.max, 0L, 1L, 2L, 3L, 4L),
    double = special_doubles,
    complex = complex(real = special_doubles, imaginary = rev(special_doubles)),
    raw = as.raw(c(0, 1, 255, 7, 8, 9, 10, 11, 12, 13)),
    character = c("a", NA, "", "caf\u00e9", "\u65e5\u672c", "b", "a", NA, "zz", "y")
  )
  for (kind in names(vectors)) {
    x <- vectors[[kind]]
    s <- share(x)
    for (form in names(index_forms(length(x)))) {
      i <- index_forms(length(x))[[form]]
      expect_identical(s[i], x[i], info = paste(kind, form))
    }
    named <- share(setNames(x, letters[seq_along(x)]))
    expect_identical(named[c("b", "zz", "a")], setNames(x, letters[seq_along(x)])[c("b", "zz", "a")],
                     info = kind)
    expect_identical(s[[3]], x[[3]], info = kind)
    close(s)
    close(named)
  }
})

test_that("x[i] on a character vector makes each string once and keeps it alive", {
  x <- c(paste0("s", 1:500), NA, "")
  s <- share(x)
  i <- sample(length(x), 2000, TRUE)
  expect_identical(s[i], x[i])
  expect_identical(s[rev(i)], x[rev(i)])
  expect_identical(sort(s, method = "radix"), sort(x, method = "radix"))
  expect_identical(s[c(2.7, NA, 503)], x[c(2.7, NA, 503)])
})

test_that("a large contiguous x[a:b] is a zero-copy view whose writes stay its own", {
  n <- 4e6  # 32 MB
  x <- as.numeric(seq_len(n))
  s <- share(x)
  # R expands the index (12 MB) for both; an ordinary vector copies 24 MB more.
  growth <- function(v) {
    gc()
    before <- anonymous_bytes()
    kept <- v[100001:3100000]
    anonymous_bytes() - before
  }
  expect_lt(growth(s), growth(x) - 16e6)
  y <- s[100001:3100000]  # 24 MB
  z <- s[seq(100001, 3100000)]
  expect_identical(y, x[100001:3100000])
  expect_identical(z, y)
  # Sub-ranges of a slice, and of those.
  expect_identical(y[2000001:2900000], x[2100001:3000000])
  expect_identical(y[2000001:2900000][5:200000], x[2100005:2300000])
  # A write to one slice reaches neither the shared vector, nor another
  # slice of it, nor the region.
  y[1] <- -1
  z[2] <- -2
  expect_identical(c(y[1:2], z[1:2]), c(-1, 100002, 100001, -2))
  expect_identical(s[100001:100002], c(100001, 100002))
  got <- in_other_process(function(name) map_shared(name)[100001:100002],
                          list(name = shared_name(s)))
  expect_identical(got, c(100001, 100002))
  # A slice travels by value, and comes back equal.
  expect_identical(unserialize(serialize(y, NULL)), y)
})

test_that("a large x[a:b] of a vector this process wrote to shows the write", {
  x <- share(as.numeric(1:1e6))
  x[5] <- -1
  # Before, the zero-copy slice read the region afresh: the write was gone.
  expect_identical(x[1:500000][5], -1)
  expect_identical(head(x[1:200000]), c(1, 2, 3, 4, -1, 6))
  m <- share(matrix(as.numeric(1:2e6), ncol = 2))
  m[3, 2] <- -7
  expect_identical(m[, 2][3], -7)
  df <- share(data.frame(a = as.numeric(1:1e6)))
  df$a[5] <- -1
  expect_identical(df[1:500000, "a"][5], -1)
  expect_identical(head(df, 5)$a, c(1, 2, 3, 4, -1))
  # An unwritten vector still slices zero-copy (an ALTREP view).
  y <- share(as.numeric(1:1e6))
  expect_true(shmr:::contains_altrep(y[1:500000]))
  expect_false(shmr:::contains_altrep(x[1:500000]))
})

test_that("data-frame row subsetting is identical to an ordinary data frame's", {
  n <- 3e5
  df <- data.frame(a = runif(n), b = sample(c(letters, NA), n, TRUE), c = seq_len(n),
                   d = sample(c(TRUE, FALSE, NA), n, TRUE), stringsAsFactors = FALSE)
  df$f <- factor(sample(c("u", "v"), n, TRUE))
  s <- share(df)
  rows <- list(sample(n, 1e4), 1:2e5, c(5, 1, NA), df$a > 0.5, -(1:10))
  for (r in rows) expect_identical(s[r, ], df[r, ])
  expect_identical(s[order(s$a), c("a", "c")], df[order(df$a), c("a", "c")])
})

test_that("sortedness and NA-freedom come from the writer's flags: sort() of sorted data is free", {
  n <- 5e6
  x <- as.numeric(seq_len(n))  # 40 MB, sorted, no NA
  s <- share(x)
  gc()
  before <- anonymous_bytes()
  y <- sort(s)
  expect_false(is.unsorted(s))
  expect_false(anyNA(s))
  # An ordinary vector is sorted again (a 40 MB copy); the view is returned.
  expect_lt(anonymous_bytes() - before, 8e6)
  expect_identical(y, x)
  expect_identical(sort(s, decreasing = TRUE), sort(x, decreasing = TRUE))
  d <- share(rev(x))
  expect_identical(sort(d), x)
  expect_true(is.unsorted(d))
})

test_that("a part of an unsorted shared vector is never called unsorted for the whole's sake", {
  # Unsorted only by its last element, no NA: the flags say "unsorted".
  x <- c(seq_len(3e5) + 0.5, 1)
  s <- share(x)
  expect_true(is.unsorted(s))
  part <- s[1:299000]  # a zero-copy slice (over 1 MB)
  expect_false(is.unsorted(part))
  expect_identical(findInterval(10, part), findInterval(10, x[1:299000]))
  expect_false(is.unsorted(part[10:290000]))
  expect_true(is.unsorted(s[299000:300001]))
  # A matrix column handed to a pool worker is such a slice too.
  m <- matrix(c(5, seq_len(4e5 - 1)), ncol = 2)
  pool <- pool_create(1)
  on.exit(pool_stop(pool))
  expect_identical(pool_apply(m, 2, is.unsorted, pool = pool, progress = FALSE),
                   apply(m, 2, is.unsorted))
})

test_that("sort(), order(), unique() and friends agree with ordinary vectors on NA, NaN and -0", {
  cases <- list(
    sorted = c(-Inf, -2, -0, 0, 0, 1.5, Inf), decreasing = c(3, 2, 2, 0, -0, -1),
    constant = rep(2, 6), with_na = c(1, 2, NA, 4), with_nan = c(NaN, 1, 2),
    na_only = c(NA_real_, NA_real_), unsorted = c(2, 1, 3), empty = numeric(0), one = 5,
    int_sorted = c(-3L, 0L, 0L, 9L), int_na = c(1L, NA, 2L), int_decreasing = 5:1,
    logical = c(FALSE, TRUE, TRUE), logical_na = c(TRUE, NA)
  )
  for (name in names(cases)) {
    x <- cases[[name]]
    s <- share(x)
    for (decreasing in c(FALSE, TRUE)) {
      for (na.last in list(NA, TRUE, FALSE)) {
        expect_identical(sort(s, decreasing = decreasing, na.last = na.last),
                         sort(x, decreasing = decreasing, na.last = na.last),
                         info = paste(name, decreasing, format(na.last)))
        expect_identical(order(s, decreasing = decreasing, na.last = na.last),
                         order(x, decreasing = decreasing, na.last = na.last), info = name)
      }
    }
    expect_identical(is.unsorted(s), is.unsorted(x), info = name)
    expect_identical(is.unsorted(s, strictly = TRUE), is.unsorted(x, strictly = TRUE), info = name)
    expect_identical(is.unsorted(s, na.rm = TRUE), is.unsorted(x, na.rm = TRUE), info = name)
    expect_identical(anyNA(s), anyNA(x), info = name)
    expect_identical(unique(s), unique(x), info = name)
    expect_identical(duplicated(s), duplicated(x), info = name)
    expect_identical(anyDuplicated(s), anyDuplicated(x), info = name)
    expect_identical(rev(s), rev(x), info = name)
    expect_identical(1 / sort(s), 1 / sort(x), info = name)  # -0 stays -0
    close(s)
  }
})

test_that("after a private write the flags are no longer trusted", {
  x <- as.numeric(1:1e5)
  s <- share(x)
  expect_false(is.unsorted(s))
  s[50000] <- NA  # a private page: the region and its flags no longer describe s
  x[50000] <- NA
  expect_true(anyNA(s))
  expect_identical(sort(s), sort(x))
  expect_identical(is.unsorted(s, na.rm = TRUE), FALSE)
  s[2] <- 1e9
  x[2] <- 1e9
  expect_identical(sort(s), sort(x))
  expect_true(is.unsorted(s[-50000]))
  expect_identical(duplicated(s), duplicated(x))
  # In another process, the same: its own write, its own copy of the page.
  fresh <- share(as.numeric(1:1e5))
  got <- in_other_process(function(name) {
    y <- map_shared(name)
    before <- c(is.unsorted(y), anyNA(y))
    y[3] <- -5
    list(before = before, sorted = identical(sort(y), sort(c(1, 2, -5, 4:1e5))),
         unsorted = is.unsorted(y))
  }, list(name = shared_name(fresh)))
  expect_identical(got$before, c(FALSE, FALSE))
  expect_true(got$sorted)
  expect_true(got$unsorted)
})

test_that("writable shares never answer from the flags", {
  w <- share(as.numeric(1:1000), readonly = FALSE)
  w[10] <- -1
  w[20] <- NA
  expect_true(is.unsorted(w, na.rm = TRUE))
  expect_true(anyNA(w))
  expect_identical(sort(w), sort(c(1:9, -1, 11:19, NA, 21:1000)))
  close(w)
})

test_that("a consumer sorts, dedups and checks a mapped vector like an ordinary one", {
  x <- c(as.numeric(1:2e5), NA)
  y <- as.numeric(1:2e5)
  s <- share(list(with_na = x, sorted = y, ints = 2e5:1))
  got <- in_other_process(function(name) {
    v <- map_shared(name)
    list(sort = sort(v$with_na), order = order(v$with_na, decreasing = TRUE),
         sorted = sort(v$sorted), unsorted = c(is.unsorted(v$sorted), is.unsorted(v$ints)),
         na = c(anyNA(v$with_na), anyNA(v$sorted)), sort_int = sort(v$ints),
         dup = anyDuplicated(v$sorted))
  }, list(name = shared_name(s)))
  expect_identical(got$sort, sort(x))
  expect_identical(got$order, order(x, decreasing = TRUE))
  expect_identical(got$sorted, y)
  expect_identical(got$unsorted, c(FALSE, TRUE))
  expect_identical(got$na, c(TRUE, FALSE))
  expect_identical(got$sort_int, 1:2e5)
  expect_identical(got$dup, 0L)
})

test_that("as.numeric(), as.integer() and as.logical() agree with ordinary vectors", {
  ints <- c(1L, NA, -5L, 0L, .Machine$integer.max)
  dbls <- c(1.9, -1.9, NA, NaN, -0, 1e9, Inf)
  lgls <- c(TRUE, NA, FALSE)
  for (x in list(ints, dbls, lgls, setNames(ints, letters[1:5]))) {
    s <- share(x)
    for (f in list(as.numeric, as.integer, as.logical, as.character, as.complex)) {
      expect_identical(suppressWarnings(f(s)), suppressWarnings(f(x)))
    }
    expect_identical(storage.mode(s) <- "double", storage.mode(x) <- "double")
  }
  # Values outside the integer range warn exactly as R does.
  big <- c(1, 3e9, NA)
  expect_identical(tryCatch(as.integer(share(big)), warning = conditionMessage),
                   tryCatch(as.integer(big), warning = conditionMessage))
  # Classed vectors keep R's own conversions.
  f <- factor(c("b", "a", "b"))
  sf <- share(f)
  expect_identical(as.character(sf), as.character(f))
  expect_identical(as.integer(sf), as.integer(f))
  d <- as.Date("2024-01-01") + 0:2
  expect_identical(as.character(share(d)), as.character(d))
})

test_that("as.numeric() and as.integer() of a shared character vector agree with R's", {
  texts <- c("1", " 2.5 ", "-3e2", "0x1A", "Inf", "-Inf", "NA", " NA ", "NaN", "", "   ", NA,
             "1e400", "3000000000", "1.9", "-1.9", "12abc", "caf\u00e9", "+7", "\t8\n")
  # Each alone (every path: silent, NA, warning, R's way), in the packed
  # layout and repeated (the dictionary layout), with names.
  cases <- c(as.list(texts), list(texts[c(1:6, 10:12, 15:16)], rep(c("1", "2", "", NA), 50),
                                  rep(texts, 20), setNames(c("4", "5"), c("a", "b"))))
  for (x in cases) {
    s <- share(x)
    for (f in list(as.numeric, as.integer, as.double)) {
      expect_identical(tryCatch(f(s), warning = function(w) conditionMessage(w)),
                       tryCatch(f(x), warning = function(w) conditionMessage(w)))
      expect_identical(suppressWarnings(f(s)), suppressWarnings(f(x)))
    }
    expect_identical(suppressWarnings(storage.mode(s) <- "integer"),
                     suppressWarnings(storage.mode(x) <- "integer"))
  }
  # A view that R wrote to converts what R holds, not the region.
  s <- share(c("1", "2", "3"))
  s[2] <- "20"
  expect_identical(as.numeric(s), c(1, 20, 3))
})

test_that("as.numeric() of a mapped character vector makes no R string per element", {
  x <- sprintf("%d.25", seq_len(2e5))
  s <- share(x)
  r <- callr::r(function(name) {
    library(shmr)
    y <- map_shared(name)
    used <- function() { g <- gc(full = TRUE); sum(g[, 2]) }
    before <- used()
    z <- as.numeric(y)
    grown <- used() - before
    list(z = z, grown = grown, size = as.numeric(object.size(z)) / 2^20)
  }, list(shared_name(s)))
  expect_identical(r$z, as.numeric(x))
  # R's own coercion would first make and keep 2e5 strings (about 11 MB);
  # the result itself is 1.5 MB.
  expect_lt(r$grown, r$size + 2)
})

test_that("Length, Dataptr and Elt still refuse a closed view", {
  s <- share(as.numeric(1:10))
  t <- s[1:5]
  close(s)
  expect_error(s[2:3], "was closed")
  expect_error(c(s), "was closed")
  expect_error(range(s), "was closed")
  expect_error(sort(s), "was closed")
  expect_error(as.integer(s), "was closed")
  expect_identical(t, as.numeric(1:5))
})

# Length, Dataptr and Elt remember the last view they were asked about
# (R calls them once per element inside c() and range()); the entry must
# never answer for another object.
test_that("the remembered last view never answers for another, a closed or a re-made view", {
  # Sizes differ, so that a mapping made where another was is not read alike.
  data_of <- function(k) as.numeric(seq_len(1000 + 37 * k)) * k
  regions <- lapply(1:20, function(k) share(data_of(k)))
  names <- vapply(regions, shared_name, "")
  a <- map_shared(names[1])
  b <- map_shared(names[2])
  expect_identical(c(a, b), c(data_of(1), data_of(2)))
  expect_identical(vapply(1:6, function(i) if (i %% 2) a[[i]] else b[[i]], 0),
                   c(1, 4, 3, 8, 5, 12))
  # New views, each read whole right after it is made, with the collector
  # freeing the last one first: R puts the new object where the old one was.
  addresses <- character()
  set.seed(7)
  for (i in 1:300) {
    k <- sample.int(20, 1)
    v <- map_shared(names[k])
    if (capabilities("profmem")) {
      addresses[i] <- tracemem(v)
      untracemem(v)
    }
    expect_identical(c(v), data_of(k))
    rm(v)
    invisible(gc())
  }
  if (capabilities("profmem")) expect_lt(length(unique(addresses)), 100)
  # A slice made from a view that was just read reads its own elements.
  big <- map_shared(names[3])
  expect_identical(range(big), c(3, 3 * 1111))
  expect_identical(c(big[101:200]), data_of(3)[101:200])
  # Read, then closed: refused, not answered from memory.
  s <- share(as.numeric(1:10))
  expect_identical(range(s), c(1, 10))
  close(s)
  expect_error(range(s), "was closed")
  expect_error(c(s), "was closed")
  # Read, then written: the write is the process's own and travels by value.
  w <- map_shared(names[4])
  expect_identical(sum(c(w)), sum(data_of(4)))
  w[1] <- -1
  expect_identical(c(w)[1:2], c(-1, 8))
  expect_identical(unserialize(serialize(w, NULL))[1:2], c(-1, 8))
  expect_identical(c(map_shared(names[4]))[1], 4)
  for (r in regions) close(r)
})
