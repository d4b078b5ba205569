# Differential tests of the ALTREP methods of shared objects, R's fast
# paths (Elt, Get_region, Extract_subset, Is_sorted, No_NA, Coerce,
# Duplicate, Dataptr, Serialized_state; on R >= 4.3 the list class too): an
# operation must give on a shared object exactly what it gives on an
# ordinary copy of the same value: the same value (identical(), with -0 and
# the bits of NaN compared), the same encodings, warnings and errors. A
# wrong fast-path answer is a silent wrong result, so the inputs are those
# where an answer could go stale or take a shortcut: values the writer
# recorded as sorted or free of NA (then written), NA, NaN, -0, Inf,
# encodings, empty and length-one vectors, vectors over many pages, slices.

fastpath_inputs <- function() {
  latin1 <- "caf\xe9"
  Encoding(latin1) <- "latin1"
  bytes <- "ab\xff"
  Encoding(bytes) <- "bytes"
  n <- 20000L  # tens of pages for every type
  list(
    int = c(3L, NA, -1L, 0L, 7L, 7L, .Machine$integer.max, -.Machine$integer.max),
    int_sorted = c(1L, 1L, 2L, 5L, 9L),
    int_decreasing = c(9L, 5L, 2L, 1L, 1L),
    int_one = 5L,
    int_empty = integer(),
    int_na = NA_integer_,
    int_long = (seq_len(n) * 7919L) %% 10007L,
    int_long_sorted = seq_len(n) * 3L,
    int_long_sorted_na = c(seq_len(n - 1L), NA),
    int_named = c(a = 1L, b = 2L, c = NA, a = 4L),
    int_matrix = matrix(c(1:11, NA), 3, 4, dimnames = list(c("r1", "r2", "r3"), NULL)),
    dbl = c(1.5, NA, NaN, -0, 0, Inf, -Inf, 1e308, -2.5, 1.5),
    dbl_sorted = c(-Inf, -1, -0, 0, 0.5, 2, Inf),
    dbl_sorted_nan = c(1, 2, NaN),
    dbl_decreasing = c(3, 2, 1, -0, -Inf),
    dbl_zeros = c(-0, 0, -0),
    dbl_same = rep(2, 50),
    dbl_nan = NaN,
    dbl_whole = c(1, 2, 3, 2^31, 2147483647.5, -2147483648.9),
    dbl_long = sin(seq_len(n)),
    dbl_long_sorted = sort(sin(seq_len(n))),
    dbl_long_decreasing = sort(sin(seq_len(n)), decreasing = TRUE),
    dbl_long_sorted_na = c(sort(sin(seq_len(n))), NA),
    lgl = c(TRUE, NA, FALSE, TRUE),
    lgl_complete = c(TRUE, FALSE, TRUE),
    lgl_long = seq_len(n) %% 3L == 0L,
    raw = as.raw(c(0, 255, 1, 1, 16)),
    cplx = complex(real = c(1, NA, 0, -0, NaN), imaginary = c(2, 0, NA, 1, 1)),
    chr = c("b", NA, "a", "", "\u00e9t\u00e9", "b", "10", " 3 ", "0x1A", "1e5", "NA", "Inf"),
    chr_numbers = c("1", " 2", "3.5", "-0", "1e3", "", NA),
    chr_integers = c("1", "2", "-7", "2147483647"),
    chr_encodings = c(latin1, bytes, "\u00e9", "x", NA),
    chr_repeated = rep(c("x", "yy", "zzz", NA), 2500),
    chr_long = as.character(seq_len(n)),
    chr_empty = character(),
    factor = factor(c("lo", "hi", NA, "lo"), levels = c("lo", "hi")),
    date = as.Date(c("2020-01-01", NA, "1999-12-31")),
    posixct = as.POSIXct(c(0, 86400, NA), origin = "1970-01-01", tz = "UTC"),
    data_frame = data.frame(a = c(3L, 1L, 2L, NA), b = c(0.5, NaN, -0, 2), c = c("x", NA, "z", "w"),
                            f = factor(c("u", "v", "u", NA)), stringsAsFactors = FALSE),
    list = list(1:3, "a", NULL, list(x = 2.5, y = NA), c(a = TRUE)),
    list_named = list(a = 1:5, b = c(2.5, NA), c = letters[1:3])
  )
}

# The operations tried on an input like `x`, as functions of the object.
fastpath_ops <- function(x) {
  n <- length(x)
  ops <- list()
  if (is.data.frame(x)) {
    return(list(
      rows = function(d) d[c(2, 1), ], rows_negative = function(d) d[-1, ],
      rows_logical = function(d) d[c(TRUE, FALSE), ], rows_na = function(d) d[NA, ],
      row_out_of_range = function(d) d[5, ], column = function(d) d[[2]], column_by_name = function(d) d[["c"]],
      dollar = function(d) d$a, columns = function(d) d[, c("a", "c")], cell = function(d) d[2, "b"],
      ordered = function(d) d[order(d$a), ], split = function(d) split(d, d$f),
      lapply = function(d) lapply(d, function(e) e), any_na = function(d) vapply(d, anyNA, NA),
      sort = function(d) sort(d$a), unsorted = function(d) is.unsorted(d$b), unique = function(d) unique(d),
      rbind = function(d) rbind(d, d), merge = function(d) merge(d, d, by = "a"),
      as_matrix = function(d) as.matrix(d), serialized = function(d) unserialize(serialize(d, NULL)),
      itself = function(d) d
    ))
  }
  if (is.list(x)) {
    return(list(
      first = function(l) l[[1]], null = function(l) l[[3]], subset = function(l) l[c(1, 3)],
      negative = function(l) l[-2], na = function(l) l[NA], out_of_range = function(l) l[[10]],
      recursive = function(l) l[[c(4, 1)]], lapply = function(l) lapply(l, length),
      unlist = function(l) unlist(l), rev = function(l) rev(l), c = function(l) c(l, l),
      rep = function(l) rep(l, 2), names = function(l) names(l), dollar = function(l) l$a,
      duplicated = function(l) duplicated(l), match = function(l) match(l, l),
      is_na = function(l) is.na(l), serialized = function(l) unserialize(serialize(l, NULL)),
      itself = function(l) l
    ))
  }
  subscripts <- list(positive = c(1L, n, 1L), negative = -1L, negatives = -c(1L, n),
                     logical = c(TRUE, FALSE), logical_na = c(TRUE, NA), na = NA_integer_, na_logical = NA,
                     out_of_range = n + 1L, out_of_range_double = c(n + 5, 1), zero = 0L, zero_one = c(0L, 1L),
                     fractional = c(1.9, 2.2), empty = integer(), all = seq_len(n), reversed = rev(seq_len(n)),
                     odd = seq(1L, max(n, 1L), by = 2L), inner = if (n > 10) 3:(n - 2) else 1L,
                     all_double = as.double(seq_len(n)), all_true = rep(TRUE, n))
  if (!is.null(names(x))) subscripts$names <- c(names(x)[1], "zz", NA)
  for (k in names(subscripts)) {
    ops[[paste0("[", k)]] <- local({
      i <- subscripts[[k]]
      function(v) v[i]
    })
  }
  if (is.matrix(x)) {
    ops$matrix_index <- function(v) v[cbind(c(1, 2), c(2, 3))]
    ops$matrix_index_na <- function(v) v[cbind(c(1, NA), c(2, 3))]
    ops$column <- function(v) v[, 2]
    ops$row <- function(v) v[2, ]
    ops$col_sums <- function(v) colSums(v)
  }
  ops <- c(ops, list(
    first = function(v) v[[1]], last = function(v) v[[n]], beyond = function(v) v[[n + 1]],
    sum = function(v) sum(v), sum_na_rm = function(v) sum(v, na.rm = TRUE), prod = function(v) prod(v),
    mean = function(v) mean(v), mean_na_rm = function(v) mean(v, na.rm = TRUE),
    min = function(v) min(v), max = function(v) max(v), range = function(v) range(v),
    range_na_rm = function(v) range(v, na.rm = TRUE), range_finite = function(v) range(v, finite = TRUE),
    cumsum = function(v) cumsum(v), cummax = function(v) cummax(v),
    unsorted = function(v) is.unsorted(v), unsorted_strictly = function(v) is.unsorted(v, strictly = TRUE),
    unsorted_na_rm = function(v) is.unsorted(v, na.rm = TRUE),
    sort = function(v) sort(v), sort_decreasing = function(v) sort(v, decreasing = TRUE),
    sort_na_last = function(v) sort(v, na.last = TRUE), sort_na_first = function(v) sort(v, na.last = FALSE),
    sort_radix = function(v) sort(v, method = "radix"), sort_shell = function(v) sort(v, method = "shell"),
    sort_int_quick = function(v) sort.int(v, decreasing = TRUE, method = "quick"),
    order = function(v) order(v), order_decreasing = function(v) order(v, decreasing = TRUE),
    order_na_drop = function(v) order(v, na.last = NA), order_radix = function(v) order(v, method = "radix"),
    rank = function(v) rank(v), xtfrm = function(v) xtfrm(v),
    any_na = function(v) anyNA(v), is_na = function(v) is.na(v), which_na = function(v) which(is.na(v)),
    rev = function(v) rev(v), head = function(v) head(v, 3), tail = function(v) tail(v, 3),
    head_negative = function(v) head(v, -2), unique = function(v) unique(v),
    duplicated = function(v) duplicated(v), duplicated_last = function(v) duplicated(v, fromLast = TRUE),
    any_duplicated = function(v) anyDuplicated(v), match = function(v) match(v, v[c(n, 1)]),
    match_into = function(v) match(v[c(1, n)], v), in_set = function(v) v %in% v[1],
    table = function(v) table(v, useNA = "ifany"),
    which = function(v) if (is.logical(v)) which(v), any = function(v) if (is.logical(v)) any(v),
    all = function(v) if (is.logical(v)) all(v),
    as_character = function(v) as.character(v), as_double = function(v) as.double(v),
    as_integer = function(v) as.integer(v), as_logical = function(v) as.logical(v),
    as_complex = function(v) as.complex(v), as_vector = function(v) as.vector(v),
    storage_double = function(v) {
      storage.mode(v) <- "double"
      v
    },
    encoding = function(v) if (is.character(v)) Encoding(v), nchar = function(v) nchar(v, type = "bytes", allowNA = TRUE),
    itself = function(v) v, unclass = function(v) unclass(v), attributes = function(v) attributes(v),
    serialized = function(v) unserialize(serialize(v, NULL)),
    rds = function(v) {
      file <- tempfile(fileext = ".rds")
      on.exit(unlink(file))
      saveRDS(v, file)
      readRDS(file)
    },
    c = function(v) c(v, v), c_na = function(v) c(v, NA), rep = function(v) rep(v, 2),
    rep_len = function(v) rep_len(v, 7), split = function(v) split(v, seq_along(v) %% 3),
    lapply = function(v) lapply(v, function(e) e), paste = function(v) paste(v, collapse = "|"),
    format = function(v) format(v), median = function(v) median(v, na.rm = TRUE),
    arithmetic = function(v) v + 1L, equal = function(v) v == v[1], which_max = function(v) which.max(v),
    prefix_unsorted = function(v) is.unsorted(v[seq_len(max(0L, n - 1L))]),
    prefix_sorted = function(v) sort(v[seq_len(max(0L, n - 1L))])
  ))
  ops
}

# What `f(x)` gives: its value, or its error's message, and its warnings.
fastpath_answer <- function(f, x) {
  # R 4.2's table() sets options(warn = 2) around its factor() call and
  # leaves it set when that call fails (on chr_encodings' "bytes" string):
  # every later warning of the session would be an error, R's own closing of
  # an unused connection included.
  old <- options(warn = getOption("warn"))
  on.exit(options(old))
  warnings <- character()
  value <- tryCatch(withCallingHandlers(f(x), warning = function(w) {
    warnings <<- c(warnings, conditionMessage(w))
    invokeRestart("muffleWarning")
  }), error = function(e) structure(conditionMessage(e), class = "fastpath_error"))
  list(value = value, warnings = warnings,
       encoding = if (is.character(value) && !inherits(value, "fastpath_error")) Encoding(value))
}

# The names of the operations whose answers differ between `shared` and the
# ordinary object `plain`.
fastpath_differences <- function(shared, plain, ops = fastpath_ops(plain)) {
  differs <- vapply(names(ops), function(op) {
    !identical(fastpath_answer(ops[[op]], shared), fastpath_answer(ops[[op]], plain), num.eq = FALSE)
  }, NA)
  names(ops)[differs]
}

test_that("shares (read-only, serialized and back, deep, writable) answer as ordinary objects", {
  warn <- getOption("warn")
  inputs <- fastpath_inputs()
  for (name in names(inputs)) {
    x <- inputs[[name]]
    made <- list(share = share(x), serialized = unserialize(serialize(share(x), NULL)),
                 deep = share(x, deep = TRUE), writable = share(x, readonly = FALSE))
    for (how in names(made)) {
      expect_identical(made[[how]], x, info = paste(name, how))
      expect_identical(fastpath_differences(made[[how]], x), character(), info = paste(name, how))
    }
  }
  expect_identical(getOption("warn"), warn)
})

test_that("a read-only share written in place answers with its new values, not the flags recorded", {
  # The writer records a node as sorted and free of NA: a write (to the
  # process's private pages) must make Is_sorted and No_NA unknown again,
  # whether or not they were asked before it, on a whole view and on a slice.
  inputs <- fastpath_inputs()
  for (name in c("int_sorted", "int_long_sorted", "dbl_sorted", "dbl_long_sorted", "dbl_long_decreasing",
                 "lgl_complete", "chr_integers", "dbl_same")) {
    x <- inputs[[name]]
    n <- length(x)
    writes <- list(na_first = function(v) `[<-`(v, 1L, NA), na_last = function(v) `[<-`(v, n, NA),
                   unsorted = function(v) `[<-`(v, 2L, v[[n]]), swap = function(v) `[<-`(v, c(1L, n), v[c(n, 1L)]))
    for (write in names(writes)) {
      for (asked_first in c(FALSE, TRUE)) {
        s <- share(x)
        if (asked_first) invisible(list(is.unsorted(s), anyNA(s), sort(s), sum(is.na(s))))
        s <- writes[[write]](s)
        expect_identical(fastpath_differences(s, writes[[write]](x)), character(),
                         info = paste(name, write, asked_first))
      }
    }
  }
  # In place, through the variable itself.
  s <- share(seq(2, 40000, by = 2))
  expect_false(is.unsorted(s))
  s[7] <- NA
  expect_true(anyNA(s))
  expect_identical(sort(s)[1:7], c(2, 4, 6, 8, 10, 12, 16))
  s[7] <- -1
  expect_true(is.unsorted(s))
  expect_identical(order(s)[1:2], c(7L, 1L))
})

test_that("slices (subsets of 1 MB or more, read in place) and matrix columns answer as ordinary vectors", {
  n <- 200000L
  inputs <- list(sorted = sort(sin(seq_len(n))), unsorted = sin(seq_len(n)), integers = seq_len(n),
                 sorted_na = c(seq_len(n - 1L), NA), matrix = matrix(as.double(seq_len(4 * n)), ncol = 4))
  pick <- list(head = function(v) v[seq_len(length(v) - 1L)], tail = function(v) v[2:length(v)],
               inner = function(v) v[1000:(length(v) - 500L)])
  ops <- fastpath_ops(1:10)[c("sum", "range", "mean", "unsorted", "unsorted_strictly", "sort",
                              "sort_decreasing", "order", "any_na", "which_na", "unique", "any_duplicated",
                              "as_integer", "as_double", "serialized", "head", "tail", "prefix_unsorted")]
  for (name in names(inputs)) {
    x <- inputs[[name]]
    s <- share(x)
    parts <- if (is.matrix(x)) {
      lapply(1:4, function(j) function(v) v[, j])
    } else {
      pick
    }
    for (k in seq_along(parts)) {
      info <- paste(name, k)
      expect_identical(fastpath_differences(parts[[k]](s), parts[[k]](x), ops), character(), info = info)
      written <- parts[[k]](s)
      expected <- parts[[k]](x)
      invisible(list(is.unsorted(written), anyNA(written)))
      written[3] <- written[length(written)]
      written[2] <- NA
      expected[3] <- expected[length(expected)]
      expected[2] <- NA
      expect_identical(fastpath_differences(written, expected, ops), character(), info = paste(info, "written"))
      expect_identical(s[], x, info = info)
    }
  }
})

test_that("a writable share written at top level answers with its new values", {
  w <- share(c(1, 2, 3, 4, 5), readonly = FALSE)
  expect_false(is.unsorted(w))
  expect_false(anyNA(w))
  w[2] <- NA
  expect_identical(fastpath_differences(w, c(1, NA, 3, 4, 5)), character())
  w[2] <- 10
  expect_identical(fastpath_differences(w, c(1, 10, 3, 4, 5)), character())
  w[] <- rev(w)
  expect_identical(fastpath_differences(w, c(5, 4, 3, 10, 1)), character())
  w[c(1, 5)] <- w[c(5, 1)]
  expect_identical(fastpath_differences(w, c(1, 4, 3, 10, 5)), character())
  i <- share(seq_len(20000L), readonly = FALSE)
  invisible(list(is.unsorted(i), anyNA(i), sum(i)))
  i[20000] <- NA
  i[[1]] <- 7L
  expected <- seq_len(20000L)
  expected[20000] <- NA
  expected[[1]] <- 7L
  expect_identical(fastpath_differences(i, expected), character())
  d <- share(data.frame(a = c(3L, 1L, 2L), b = c(0.5, -0, 2)), readonly = FALSE)
  d$a[2] <- NA
  d[3, "b"] <- NaN
  expect_identical(fastpath_differences(d, data.frame(a = c(3L, NA, 2L), b = c(0.5, -0, NaN))),
                   character())
})

test_that("shares received by another process answer there as ordinary objects", {
  inputs <- fastpath_inputs()
  shared <- lapply(inputs, share)
  helpers <- list(fastpath_ops = fastpath_ops, fastpath_answer = fastpath_answer,
                  fastpath_differences = fastpath_differences)
  got <- in_other_process(function(shared, plain, helpers) {
    for (name in names(helpers)) {
      f <- helpers[[name]]
      environment(f) <- globalenv()
      assign(name, f, globalenv())
    }
    received <- vapply(shared, function(s) identical(shmr::is_shared(s), TRUE), NA)
    list(received = received, differences = Map(fastpath_differences, shared, plain))
  }, list(shared = shared, plain = inputs, helpers = helpers))
  # Each arrived as a share, not by value (on R < 4.3 a list travels
  # element by element and arrives as an ordinary list).
  atomic <- !vapply(inputs, is.list, NA)
  expect_true(all(got$received[atomic]))
  for (name in names(inputs)) expect_identical(got$differences[[name]], character(), info = name)
})
