# Every supported kind of object comes back identical, in this process and
# in another one.

roundtrip_cases <- function() {
  strings <- c("plain", NA, "", "caf\u00e9", "\u65e5\u672c")
  latin <- "fa\xe7ile"
  Encoding(latin) <- "latin1"
  bytes <- "\xff\xfe"
  Encoding(bytes) <- "bytes"
  df <- data.frame(
    id = 1:4, value = c(1.5, NA, -Inf, 3), flag = c(TRUE, FALSE, NA, TRUE),
    label = c("a", NA, "", "d"), group = factor(c("x", "y", "x", "z")),
    stringsAsFactors = FALSE
  )
  df$items <- list(1:3, "b", NULL, list(deep = TRUE))
  list(
    logical = c(TRUE, FALSE, NA),
    integer = c(1L, NA, -5L, .Machine$integer.max),
    double = c(1.5, NA, NaN, Inf, -0),
    complex = complex(real = c(1, NA), imaginary = c(-2, 3)),
    raw = as.raw(c(0, 127, 255)),
    character = strings,
    encodings = c(latin, bytes, "\u00e9"),
    empty_double = numeric(0),
    empty_character = character(0),
    named = c(a = 1, b = 2, c = 3),
    long_named = setNames(seq_len(500) / 3, paste0("n", seq_len(500))),
    factor = factor(c("lo", "hi", NA, "lo"), levels = c("lo", "hi")),
    ordered = factor(c("b", "a"), levels = c("a", "b"), ordered = TRUE),
    date = as.Date("2024-02-29") + 0:3,
    posixct = as.POSIXct("2024-01-01 12:00:00", tz = "Europe/Paris") + c(0, 3600),
    matrix = matrix(as.numeric(1:12), 3, dimnames = list(letters[1:3], LETTERS[1:4])),
    array = array(1:24, dim = 2:4),
    custom_attributes = structure(1:5, note = "kept", weights = runif(5), class = "myclass"),
    list = list(1, "a", NULL, list(2, list(3, list(4)))),
    named_list = list(alpha = 1:3, beta = letters, gamma = NULL),
    data_frame = df,
    data_frame_rownames = data.frame(x = 1:3, row.names = c("r1", "r2", "r3")),
    empty_list = list(),
    null = NULL,
    functions_inside = list(f = function(x) x + 1, e = quote(a + b), fo = y ~ x),
    s4_inside = list(s4 = methods::new("dgTMatrixLike_dummy_for_shmr"))
  )
}

methods::setClass("dgTMatrixLike_dummy_for_shmr", representation(x = "numeric"),
                  prototype(x = c(1, 2)))

test_that("every supported object round-trips identically in this process", {
  for (case in names(roundtrip_cases())) {
    original <- roundtrip_cases()[[case]]
    shared <- share(original)
    if (case == "functions_inside") {
      expect_equal(shared$f(1), 2, info = case)
      expect_identical(shared$e, original$e, info = case)
      expect_identical(class(shared$fo), "formula", info = case)
      expect_identical(format(shared$fo), format(original$fo), info = case)
    } else {
      expect_identical(shared, original, info = case)
    }
    expect_identical(class(shared), class(original), info = case)
  }
})

test_that("vectors, lists and data frames are really shared", {
  for (case in c("double", "character", "factor", "matrix", "named_list", "data_frame")) {
    shared <- share(roundtrip_cases()[[case]])
    expect_true(is_shared(shared), info = case)
    expect_match(shared_name(shared), "^shmr_[A-Za-z0-9]{22}$", info = case)
  }
  expect_false(is_shared(1:10))
  expect_null(shared_name(letters))
})

test_that("share() is idempotent, also for parts of a shared object", {
  x <- share(list(a = rnorm(10), b = letters))
  expect_identical(share(x), x)
  expect_identical(shared_name(share(x)), shared_name(x))
  expect_identical(shared_name(share(x$b)), shared_name(x$b))
})

test_that("share(x) alone gives what share() with every default spelled out gives", {
  # share(x) of a vector skips the checks of the other arguments.
  for (case in names(roundtrip_cases())) {
    original <- roundtrip_cases()[[case]]
    if (!is.atomic(original) || is.null(original) || isS4(original)) next
    alone <- share(original)
    spelled <- share(original, backing = "auto", readonly = TRUE, name = NULL, deep = FALSE,
                     path = NULL, persist = FALSE)
    expect_identical(alone, spelled, info = case)
    expect_true(is_shared(alone), info = case)
    a <- shared_info(alone)
    b <- shared_info(spelled)
    for (field in c("backing", "readonly", "persistent", "size", "class", "owner", "class_info")) {
      expect_identical(a[[field]], b[[field]], info = paste(case, field))
    }
    expect_false(identical(a$name, b$name), info = case)
    # Already shared: the same object back, in both ways.
    expect_identical(shared_name(share(alone)), a$name, info = case)
    expect_identical(shared_name(share(alone, readonly = TRUE)), a$name, info = case)
  }
})

test_that("every supported object round-trips in another process by name", {
  cases <- roundtrip_cases()
  cases$functions_inside <- NULL
  cases$s4_inside <- NULL
  cases$null <- NULL
  # Without ALTREP lists (R < 4.3) a list holding no vector is an ordinary
  # copy, with no name to map (README, "What it does not guarantee").
  if (getRversion() < "4.3.0") cases$empty_list <- NULL
  shared <- lapply(cases, share)
  names_by_case <- vapply(shared, shared_name, "")
  result <- in_other_process(function(names_by_case) {
    lapply(names_by_case, function(n) fetch(map_shared(n)))
  }, list(names_by_case = names_by_case))
  for (case in names(cases)) expect_identical(result[[case]], cases[[case]], info = case)
})

test_that("the same object referenced twice is stored once", {
  m <- matrix(runif(1e5), 100)
  one <- share(list(a = m))
  two <- share(list(a = m, b = m))
  distinct <- share(list(a = m, b = m + 0))
  size <- function(x) shared_info(x)$size
  expect_lt(size(two) - size(one), 1024)
  expect_gt(size(distinct) - size(one), 8e5)
  expect_identical(two$a, two$b)
})

test_that("the empty symbol (formals(), alist()) is shared like any language object", {
  for (x in list(list(formals(function(a, b = 2) NULL)), alist(a = , b = 1),
                 list(quote(expr = ), 1:3))) {
    expect_identical(share(x), x)
    expect_identical(unserialize(serialize(share(x), NULL)), x)
  }
})

test_that("TRUE, FALSE and NA attributes are R's own constants (POSIXlt's balanced)", {
  x <- as.POSIXlt(c("2021-03-28 01:30:00", NA), tz = "Europe/Berlin")
  s <- share(x)
  expect_identical(s, x)
  # R compares the "balanced" attribute with its TRUE by address: a copy of
  # TRUE would make it balance the object again and mark it NA.
  replaced <- function(x) {
    x[1] <- x[2]
    x
  }
  expect_identical(replaced(s), replaced(x))
  expect_identical(attr(replaced(s), "balanced"), attr(replaced(x), "balanced"))
  flags <- share(structure(as.numeric(1:10), yes = TRUE, no = FALSE, unknown = NA))
  expect_identical(attributes(flags), list(yes = TRUE, no = FALSE, unknown = NA))
})

test_that("pairlists come back as pairlists, and one shared whole has a name", {
  shared <- share(pairlist(a = 1, b = "x"))
  expect_identical(shared, pairlist(a = 1, b = "x"))
  name <- shared_name(shared)
  expect_match(name, "^shmr_")
  expect_true(is_shared(shared))
  expect_identical(map_shared(name), pairlist(a = 1, b = "x"))
  # A pairlist that no longer holds what it was shared with is not shared.
  changed <- shared
  changed$a <- 2
  expect_null(shared_name(changed))
  expect_identical(shared_name(shared), name)
  # Nothing shared inside: an ordinary copy, with no name.
  expect_null(shared_name(share(pairlist(a = NULL))))
  # Inside a shared list: read from the list view on R >= 4.3, it has a
  # name; on R 4.2 only its elements do.
  holder <- share(list(p = pairlist(a = 1:3, b = "x"), w = 2))
  if (getRversion() >= "4.3.0") {
    expect_identical(map_shared(shared_name(holder$p)), pairlist(a = 1:3, b = "x"))
  } else {
    expect_null(shared_name(holder$p))
    expect_match(shared_name(holder$p$a), "^shmr_")
  }
  # In another process, by name.
  skip_without_callr()
  expect_identical(callr::r(function(name) shmr::map_shared(name)[["b"]], list(name = name)), "x")
})

test_that("vectors longer than 2^31 elements round-trip", {
  skip_on_cran()
  skip_unless_shm_free(4 * 2^30)
  n <- 2^31 + 5
  x <- raw(n)
  x[n] <- as.raw(7)
  x[2^31] <- as.raw(3)
  shared <- share(x)
  rm(x)
  gc()
  expect_identical(length(shared), n)
  expect_identical(shared[n], as.raw(7))
  expect_identical(shared[2^31], as.raw(3))
  expect_identical(shared[c(1, n - 1)], as.raw(c(0, 0)))
  close(shared)
})
