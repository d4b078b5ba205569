# shared_buffer(): writes by subscript go to shared memory whatever object R
# hands the replacement method, nothing else ever changes the buffer, and a
# write costs no temporary memory of the size of what it writes.

test_that("a buffer written inside a function and returned is still the buffer", {
  for (rows in c(10, 1000)) {
    b <- shared_buffer("double", c(rows, 2), init = 0)
    fill_first <- function(buffer) {
      buffer[, 1] <- 1
      buffer
    }
    returned <- fill_first(b)
    expect_true(is_shared(returned), info = rows)
    expect_identical(shared_name(returned), shared_name(b), info = rows)
    expect_identical(sum(b[, 1]), as.numeric(rows), info = rows)
    seen <- in_other_process(function(name) sum(map_shared(name)), list(name = shared_name(b)))
    expect_identical(seen, as.numeric(rows), info = rows)
    # Setting dimnames makes R copy or wrap the buffer: it is still the buffer.
    dimnames(returned) <- list(NULL, c("a", "b"))
    returned[, "b"] <- 2
    expect_true(is_shared(returned), info = rows)
    expect_identical(sum(b[, 2]), 2 * rows, info = rows)
    expect_invisible(close(returned))
    expect_error(b[1], "was closed", info = rows)
  }
})

test_that("a pool takes a buffer returned by a function, and its workers write into it", {
  skip_on_cran()
  skip_if_not_installed("callr")
  # Large enough to travel by name (above shmr.share_threshold).
  b <- shared_buffer("integer", c(1e5, 4), init = 0L)
  prepare <- function(buffer) {
    buffer[1, ] <- -1L
    buffer
  }
  out <- prepare(b)
  pool <- pool_create(2)
  on.exit(pool_stop(pool), add = TRUE)
  invisible(pool_lapply(1:4, function(j, out) {
    out[2:3, j] <- c(j, j * 10L)
    NULL
  }, out = out, pool = pool))
  expect_identical(b[1:4, ], rbind(rep(-1L, 4), 1:4, 1:4 * 10L, 0L))
  close(out)
})

test_that("a buffer given names stays the buffer after reads that ask R for a writable pointer", {
  # names<- makes R copy the buffer (it references itself, so R takes it as
  # held elsewhere); c(), rep(), format(), range() and cumsum() of a named
  # vector then ask for a writable pointer to read it. That copy once became
  # a private vector there: later writes failed ("not a shared buffer") or,
  # inside a function such as a worker's FUN, went nowhere shared.
  reads <- list(c = function(x) c(x), rep = function(x) rep(x, 2), format = format,
                range = range, cumsum = cumsum, which = function(x) which(x == 0L))
  for (what in names(reads)) {
    b <- shared_buffer("integer", 3, init = 0L)
    names(b) <- c("a", "b", "c")
    invisible(reads[[what]](b))
    expect_true(is_shared(b), info = what)
    b["a"] <- 1L
    fill <- function(buffer) {
      invisible(reads[[what]](buffer))
      buffer["b"] <- 2L
      buffer
    }
    fill(b)
    seen <- in_other_process(function(name) as.vector(map_shared(name)),
                             list(name = shared_name(b)))
    expect_identical(seen, c(1L, 2L, 0L), info = what)
    close(b)
  }
  # Kept in a list or an environment, where no variable is bound to R's
  # copy, and long (R wraps a long vector instead of copying it).
  for (n in c(3, 1000)) {
    b <- shared_buffer("integer", n, init = 0L)
    name <- shared_name(b)
    held <- list(out = b)
    names(held$out) <- paste0("e", seq_len(n))
    invisible(c(held$out))
    held$out["e1"] <- 1L
    env <- new.env()
    env$out <- b
    rm(b)
    dim(env$out) <- c(n, 1)
    dimnames(env$out) <- list(NULL, "only")
    invisible(format(env$out))
    env$out[2, "only"] <- 2L
    seen <- in_other_process(function(name) as.vector(map_shared(name))[1:2],
                             list(name = name))
    expect_identical(seen, 1:2, info = n)
    close(held$out)
  }
  # A forked worker reads the named buffer the same way before it writes.
  skip_on_os("windows")
  b <- shared_buffer("double", c(2, 2), init = 0)
  dimnames(b) <- list(c("x", "y"), c("p", "q"))
  invisible(parallel::mclapply(1:2, function(j) {
    invisible(format(b))
    b[, j] <- j
    NULL
  }, mc.cores = 2))
  expect_identical(as.vector(b[]), c(1, 1, 2, 2))
  close(b)
})

test_that("a buffer given an attribute in a list or an environment reads what others write", {
  # attr<- is not generic, so no method of the buffer's makes R's copy the
  # buffer again: the copy, kept in a list or an environment, once became a
  # private vector at its first read asking for a writable pointer, and read
  # the values of that moment for ever after.
  write_second <- function(name, value) {
    in_other_process(function(name, value) {
      x <- map_shared(name)
      x[2] <- value
      NULL
    }, list(name = name, value = value))
  }
  for (n in c(3, 1000)) {
    b <- shared_buffer("integer", n, init = 0L)
    held <- list(x = b)
    env <- new.env()
    env$x <- b
    name <- shared_name(b)
    rm(b)
    attr(held$x, "units") <- "kg"
    comment(env$x) <- "weights"
    invisible(c(held$x))
    invisible(format(env$x))
    write_second(name, 7L)
    expect_identical(held$x[2], 7L, info = n)
    expect_identical(env$x[2], 7L, info = n)
    expect_identical(attr(held$x, "units"), "kg", info = n)
    held$x[3] <- 3L
    expect_identical(env$x[3], 3L, info = n)
    close(held$x)
  }
  # In a function, the list is a variable of its frame.
  b <- shared_buffer("double", 2, init = 0)
  name <- shared_name(b)
  label_and_read <- function(buffer) {
    kept <- list(buffer)
    attr(kept[[1]], "units") <- "m"
    invisible(rep(kept[[1]], 2))
    write_second(name, 5)
    kept[[1]][2]
  }
  expect_identical(label_and_read(b), 5)
  close(b)
})

test_that("R's temporary copies of a buffer never change it", {
  for (n in c(10, 1000)) {
    b <- shared_buffer("double", n, init = 1)
    doubled <- unclass(b) * 2
    expect_identical(doubled, rep(2, n), info = n)
    expect_identical(sqrt(unclass(b) * 4), rep(2, n), info = n)
    expect_identical(-unclass(b), rep(-1, n), info = n)
    expect_identical(b[], rep(1, n), info = n)
    copy <- unclass(b)
    copy[1] <- 5
    expect_identical(copy[1], 5, info = n)
    expect_identical(b[1], 1, info = n)
  }
})

test_that("arithmetic and Math results are ordinary vectors, not buffers", {
  b <- shared_buffer("double", c(2, 2), init = 1)
  results <- list(times = b * 2, minus = -b, compare = b == 1, sqrt = sqrt(b),
                  round = round(b), cumsum = cumsum(b), conj = Conj(b), t = t(b),
                  diff = diff(b))
  for (what in names(results)) {
    y <- results[[what]]
    expect_false(inherits(y, "shmr_buffer"), label = what)
    expect_false(is_shared(y), label = what)
    # An ordinary vector takes assignments; as a "buffer" it refused them.
    y[1] <- 0
    expect_equal(y[1], 0, label = what)
  }
  expect_identical(results$times, matrix(2, 2, 2))
  expect_identical(results$t, matrix(1, 2, 2))
  expect_identical(b[], matrix(1, 2, 2))
  # `+b` is the buffer itself, as `+x` is x: it stays the buffer.
  same <- +b
  expect_true(is_shared(same))
  same[1] <- 5
  expect_identical(b[1], 5)
})

test_that("subscripts follow R's rules for `[<-`", {
  a <- shared_buffer("integer", c(3, 4, 2), init = 0L)
  ref <- array(0L, c(3, 4, 2))
  a[2, , 2] <- 1:4
  ref[2, , 2] <- 1:4
  a[cbind(1, 1, 1)] <- 9L
  ref[cbind(1, 1, 1)] <- 9L
  a[-1, 1, 1] <- 7L
  ref[-1, 1, 1] <- 7L
  a[c(TRUE, FALSE), 4, ] <- c(5L, 6L)
  ref[c(TRUE, FALSE), 4, ] <- c(5L, 6L)
  a[20:21] <- 3L
  ref[20:21] <- 3L
  expect_identical(fetch(a), ref)
  m <- shared_buffer("double", c(2, 2), init = 0)
  dimnames(m) <- list(c("x", "y"), c("p", "q"))
  m["y", "q"] <- 4
  m[["x", "p"]] <- 1
  expect_identical(fetch(m), matrix(c(1, 0, 0, 4), 2, dimnames = list(c("x", "y"), c("p", "q"))))
  expect_error(m[, 3] <- 1, "subscript out of bounds")
  # As for a matrix: along the whole vector R warns, with a subscript per
  # dimension it refuses.
  expect_warning(m[1:3] <- 1:2, "not a multiple of replacement length")
  expect_error(m[1:2, 1] <- 1:3, "not a multiple of replacement length")
  expect_error(m[1, 1, 1] <- 1, "incorrect number of subscripts")
  expect_error(m[[1:2]] <- 1:2, "more elements supplied")
  # `[[<-` selects one element, as for any vector; before, b[[c(1, 2)]]
  # wrote two.
  b <- shared_buffer("double", 5, init = 0)
  expect_error(b[[c(1, 2)]] <- 1, "more than one element")
  expect_error(m[[1, 1:2]] <- 1, "more than one element")
  expect_identical(fetch(b), rep(0, 5))
  expect_identical(fetch(m)[1, ], c(p = 1, q = 1))
  b[[2]] <- 8
  expect_identical(fetch(b), c(0, 8, 0, 0, 0))
})

test_that("a character matrix subscript selects by dimnames, as for a matrix", {
  labels <- list(c("a", "b"), c("x", "y"))
  bm <- shared_buffer("double", c(2, 2), init = 0)
  dimnames(bm) <- labels
  m <- matrix(0, 2, 2, dimnames = labels)
  bm[cbind("b", "y")] <- 7
  m[cbind("b", "y")] <- 7
  bm[cbind(c("a", "a"), c("x", "y"))] <- c(1, 2)
  m[cbind(c("a", "a"), c("x", "y"))] <- c(1, 2)
  # A row with an NA name selects nothing when one value is given.
  bm[cbind("b", NA)] <- 9
  m[cbind("b", NA)] <- 9
  expect_identical(fetch(bm), m)
  expect_error(bm[cbind("b", "z")] <- 1, "subscript out of bounds")
  expect_error(bm[cbind(c("a", NA), "x")] <- 1:2, "NAs are not allowed")
  plain <- shared_buffer("double", c(2, 2), init = 0)
  expect_error(plain[cbind("b", "y")] <- 1, "no 'dimnames' attribute for array")
  expect_identical(fetch(bm), m)

  # `[<-` takes no `drop`: base R's error counts it as a subscript, the
  # buffer's says what is wrong; nothing is written.
  expect_error(bm[1, , drop = FALSE] <- 5, "`drop` is not an argument of `\\[<-`")
  expect_error(bm[1, 1, drop = TRUE] <- 5, "`drop`")
  expect_identical(fetch(bm), m)
  # A subscript of a type R refuses is R's error, not an internal one.
  b <- shared_buffer("double", 4, init = 0)
  expect_error(b[list(1)] <- 1, "invalid subscript type 'list'")
  b[factor("b", levels = c("a", "b"))] <- 3
  expect_identical(fetch(b), c(0, 3, 0, 0))
})

test_that("NA and zero subscripts follow R's rules for `[<-` and `[[<-`", {
  b <- shared_buffer("double", 4, init = 0)
  v <- numeric(4)
  # One value: NA positions select nothing, zeros are dropped.
  b[c(1, NA)] <- 5
  v[c(1, NA)] <- 5
  expect_identical(b[], v)
  b[NA] <- 1
  v[NA] <- 1
  expect_identical(b[], v)
  b[c(0, NA, 2)] <- 9
  v[c(0, NA, 2)] <- 9
  expect_identical(b[], v)
  b[0] <- 7
  expect_identical(b[], v)
  # Several values with an NA position: which goes where is unclear.
  expect_error(b[c(1, NA)] <- c(7, 8), "NAs are not allowed in subscripted assignments")
  expect_identical(b[], v)
  expect_error(b[[0]] <- 3, "less than one element")
  expect_error(b[[NA]] <- 3, "not NA")
  # A logical subscript of `[[<-` is a position, as R takes it: TRUE is 1
  # (before, b[[TRUE]] <- v set every element), FALSE selects nothing.
  b[[TRUE]] <- 6
  v[[TRUE]] <- 6
  expect_identical(b[], v)
  expect_error(b[[FALSE]] <- 3, "less than one element")
  b[[2.7]] <- 8
  v[[2.7]] <- 8
  expect_identical(b[], v)
  expect_error(b[5] <- 1, "out of bounds")
  expect_error(b[rep(TRUE, 5)] <- 1, "out of bounds")
  expect_identical(b[], v)

  m <- shared_buffer("double", c(2, 2), init = 0)
  plain <- matrix(0, 2, 2)
  m[[TRUE, 2]] <- 3
  plain[[TRUE, 2]] <- 3
  expect_identical(m[], plain)
  m[cbind(c(1, NA), c(1, 2))] <- 4
  plain[cbind(c(1, NA), c(1, 2))] <- 4
  expect_identical(m[], plain)
  m[c(1, NA), 2] <- 6
  plain[c(1, NA), 2] <- 6
  expect_identical(m[], plain)
  expect_error(m[cbind(c(1, NA), c(1, 2))] <- c(4, 5), "NAs are not allowed")
  expect_error(m[c(1, NA), 1] <- c(5, 6), "NAs are not allowed")
  expect_identical(m[], plain)
  # A row of a subscript matrix with a zero selects nothing; a negative
  # value is R's error, not "out of bounds".
  m[cbind(c(0, 2), c(1, 1))] <- 9
  plain[cbind(c(0, 2), c(1, 1))] <- 9
  m[cbind(0, 1)] <- 10
  plain[cbind(0, 1)] <- 10
  expect_identical(m[], plain)
  expect_error(m[cbind(-1, 1)] <- 1, "negative values are not allowed in a matrix subscript")
  # An infinite position is taken as NA, as R takes it.
  b[-Inf] <- 1
  b[Inf] <- 1
  expect_identical(b[], v)
  expect_error(b[c(1, Inf)] <- c(1, 2), "NAs are not allowed")
})

test_that("NA and infinite subscripts with a value of length zero or above one are R's errors", {
  # Each assignment to an ordinary vector, matrix or array and to a buffer
  # of the same type and contents: the same error, or the same elements.
  # Before, NA (and infinite) positions were dropped before the value's
  # length was checked, so b[NA] <- numeric(0) wrote nothing silently.
  compare <- function(ordinary, make_buffer, assignments) {
    for (a in assignments) {
      expected <- tryCatch({
        x <- ordinary
        # R warns when it takes an infinite row or column as NA; the buffer
        # does not.
        suppressWarnings(eval(a))
        c(x)
      }, error = conditionMessage)
      got <- tryCatch({
        x <- make_buffer()
        eval(a)
        c(x[])
      }, error = function(e) sub("^shmr: ", "", conditionMessage(e)))
      expect_identical(got, expected, label = deparse(a))
    }
  }
  vector_buffer <- function() {
    b <- shared_buffer("double", 3, init = 0)
    b[] <- c(1, 2, 3)
    b
  }
  compare(c(1, 2, 3), vector_buffer, list(
    quote(x[NA] <- numeric(0)), quote(x[NA_integer_] <- numeric(0)),
    quote(x[NA_real_] <- numeric(0)), quote(x[Inf] <- numeric(0)), quote(x[-Inf] <- numeric(0)),
    quote(x[c(0, NA)] <- numeric(0)), quote(x[c(NA, 2)] <- numeric(0)),
    quote(x[c(FALSE, NA, FALSE)] <- numeric(0)), quote(x[NA] <- NULL),
    quote(x[NA] <- character(0)), quote(x[2] <- numeric(0)),
    # Nothing selected: no error.
    quote(x[0] <- numeric(0)), quote(x[FALSE] <- numeric(0)), quote(x[integer(0)] <- numeric(0)),
    # One value: NA and infinite positions select nothing; several: an error.
    quote(x[NA] <- 5), quote(x[c(NA, 2)] <- 7), quote(x[Inf] <- 5), quote(x[c(Inf, 1)] <- 9),
    quote(x[NA] <- c(5, 6)), quote(x[c(NA, 2)] <- c(7, 8)), quote(x[c(Inf, 1)] <- c(4, 5)),
    quote(x[c(0, NA)] <- c(1, 2)), quote(x[c(FALSE, NA)] <- c(1, 2))
  ))
  integer_buffer <- function() shared_buffer("integer", 3, init = 4L)
  compare(rep(4L, 3), integer_buffer, list(
    quote(x[NA] <- integer(0)), quote(x[NA] <- numeric(0)), quote(x[Inf] <- integer(0)),
    quote(x[NA] <- 1L), quote(x[NA] <- 1:2)
  ))
  matrix_buffer <- function() shared_buffer("double", c(2, 3), init = 0)
  compare(matrix(0, 2, 3), matrix_buffer, list(
    quote(x[NA, 1] <- numeric(0)), quote(x[1, NA] <- numeric(0)), quote(x[NA, NA] <- numeric(0)),
    quote(x[NA, ] <- numeric(0)), quote(x[c(TRUE, NA), 1] <- numeric(0)),
    quote(x[Inf, 1] <- numeric(0)), quote(x[1, -Inf] <- numeric(0)),
    quote(x[cbind(NA, 1)] <- numeric(0)), quote(x[cbind(1, NA)] <- numeric(0)),
    quote(x[cbind(NA, NA)] <- numeric(0)), quote(x[NA] <- numeric(0)),
    quote(x[NA, integer(0)] <- numeric(0)), quote(x[cbind(0, NA)] <- numeric(0)),
    quote(x[0, 1] <- numeric(0)), quote(x[FALSE, 1] <- numeric(0)),
    quote(x[NA, 1] <- 9), quote(x[c(NA, 1), 1] <- 9), quote(x[cbind(c(NA, 1), 1)] <- 9),
    quote(x[NA, 1] <- c(1, 2)), quote(x[c(NA, 1), 1:2] <- c(1, 2)),
    quote(x[cbind(c(NA, 1), 1)] <- c(8, 9))
  ))
  array_buffer <- function() shared_buffer("double", c(2, 2, 2), init = 0)
  compare(array(0, c(2, 2, 2)), array_buffer, list(
    quote(x[NA, 1, 1] <- numeric(0)), quote(x[1, 1, Inf] <- numeric(0)),
    quote(x[cbind(NA, 1, 1)] <- numeric(0)), quote(x[NA, 1, 1] <- 3),
    quote(x[NA, 1, 1] <- c(1, 2))
  ))
})

test_that("a length that is not a multiple recycles with R's warning", {
  b <- shared_buffer("double", 12, init = 0)
  v <- numeric(12)
  expect_warning(b[1:2] <- 1:3, "not a multiple of replacement length")
  suppressWarnings(v[1:2] <- 1:3)
  expect_warning(b[] <- 1:5, "not a multiple of replacement length")
  suppressWarnings(v[] <- 1:5)
  expect_identical(b[], v)
  m <- shared_buffer("integer", c(3, 4), init = 0L)
  expect_error(m[, 2:3] <- 1:4, "not a multiple")
  expect_identical(m[], matrix(0L, 3, 4))
  expect_error(shared_buffer("integer", 3, init = 1.5), "not a whole number")
  expect_error(shared_buffer("raw", 3, init = 2.5), "not a whole number")
})

test_that("a buffer stays the shared buffer after an assignment that failed", {
  for (n in c(10, 100, 1e5)) {
    b <- shared_buffer("double", n, init = 0)
    name <- shared_name(b)
    # R wraps a large vector for a complex assignment; a failed one left the
    # wrapper in `b`, which then read as no shared object at all.
    expect_error(b[n + 1] <- 1, "out of bounds")
    expect_error(b[["zz"]] <- 1)
    expect_true(is_shared(b), info = n)
    expect_identical(shared_name(b), name, info = n)
    expect_identical(shared_info(b)$name, name, info = n)
    b[2] <- 5
    expect_identical(map_shared(name)[2], 5, info = n)
    expect_true(close(b), info = n)
    expect_false(region_exists(name), info = n)
  }
  # Other attributes on a large shared vector: R's wrapper, still shared.
  s <- share(as.numeric(1:100))
  tagged <- structure(s, note = "a")
  expect_true(is_shared(tagged))
  expect_null(shared_name(tagged))  # its name would give back `s`, not `tagged`
  expect_identical(shared_name(structure(tagged, note = NULL)), shared_name(s))
  expect_false(is_shared(as.character(s)))
})

test_that("writing a column costs no temporary memory the size of the column", {
  skip_on_cran()
  # About 40 MB per column; R's own `[<-` with positions built in R used
  # several times that.
  got <- in_other_process(function() {
    b <- shared_buffer("double", c(5e6, 2), init = 0)
    invisible(gc())
    before <- shmr:::process_memory()[["anonymous"]]
    b[, 1] <- 1
    b[seq_len(5e6), 2] <- 2
    after <- shmr:::process_memory()[["anonymous"]]
    list(added = after - before, sums = c(sum(b[, 1]), sum(b[, 2])))
  })
  expect_identical(got$sums, c(5e6, 1e7))
  skip_if_memory_is_sanitized()
  expect_lt(got$added, 8e6)
})

test_that("a value the buffer's type cannot hold is an error, as for `init`", {
  b <- shared_buffer("integer", 3, init = 0L)
  expect_error(b[1] <- 1.5, "a value assigned cannot be stored in a buffer of type integer")
  expect_error(b[1] <- 3e9, "cannot be stored in a buffer of type integer")
  expect_error(b[1] <- "a", "cannot be stored in a buffer of type integer")
  r <- shared_buffer("raw", 3)
  expect_error(r[2] <- 2.5, "not a whole number")
  expect_error(r[2] <- 300, "cannot be stored in a buffer of type raw")
  # Nothing was written by the refused assignments.
  expect_identical(b[], c(0L, 0L, 0L))
  expect_identical(r[], as.raw(c(0, 0, 0)))
  # What the type holds is converted, as documented.
  b[1:2] <- c(2, NaN)
  r[3] <- 7
  expect_identical(b[], c(2L, NA, 0L))
  expect_identical(r[], as.raw(c(0, 0, 7)))
  # A value as.vector() refuses is said as the buffer's, not as.vector()'s.
  err <- tryCatch(shared_buffer("double", 2, init = function() 1), error = function(e) e)
  expect_match(conditionMessage(err), "^`init` \\(function.*\\) cannot be stored in a buffer of type double")
  expect_null(conditionCall(err))
})

test_that("a number given as a complex, a string, a raw byte or in a list is checked as the number", {
  # as.vector() stores these without a warning (1.5+0i as 1L, "1.5" as 1L,
  # 2+0i or as.raw(7) as TRUE): each is refused as the double would be.
  b <- shared_buffer("integer", 3, init = 0L)
  expect_error(b[1] <- 1.5 + 0i, "type integer: it is not a whole number")
  expect_error(b[1] <- 1i, "type integer: imaginary parts discarded")
  expect_error(b[1] <- "1.5", "type integer: it is not a whole number")
  expect_error(b[1] <- list(2.5), "type integer: it is not a whole number")
  expect_error(b[1] <- list("a"), "type integer: a string that is not a number")
  expect_error(b[1] <- list(1:2), "type integer: a list whose elements are not all single values")
  l <- shared_buffer("logical", 3, init = FALSE)
  expect_error(l[1] <- 2 + 0i, "type logical: a number other than 0 or 1")
  expect_error(l[1] <- 1i, "type logical: imaginary parts discarded")
  expect_error(l[1] <- as.raw(7), "type logical: a number other than 0 or 1")
  expect_error(l[1] <- list(2.5), "type logical: a number other than 0 or 1")
  expect_error(l[1] <- list("a"), "type logical: a string that is not a number")
  r <- shared_buffer("raw", 3)
  expect_error(r[1] <- 1.5 + 0i, "type raw: it is not a whole number")
  expect_error(r[1] <- "1.5", "type raw: it is not a whole number")
  expect_error(shared_buffer("integer", 2, init = 1.5 + 0i), "`init` .* not a whole number")
  expect_identical(b[], c(0L, 0L, 0L))
  expect_identical(l[], c(FALSE, FALSE, FALSE))
  expect_identical(r[], as.raw(c(0, 0, 0)))
  # The same values that the type holds are stored.
  b[1:3] <- list(2, 3L, 4)
  l[1:3] <- c(as.raw(1), as.raw(0), as.raw(1))
  r[1:2] <- c("2", "255")
  expect_identical(b[], c(2L, 3L, 4L))
  expect_identical(l[], c(TRUE, FALSE, TRUE))
  expect_identical(r[], as.raw(c(2, 255, 0)))
})

test_that("negative subscripts mixed with NA are R's error, and write nothing", {
  b <- shared_buffer("double", 5, init = 0)
  x <- numeric(5)
  expect_error(x[c(-1, NA)] <- 3, "only 0's may be mixed with negative subscripts")
  expect_error(b[c(-1, NA)] <- 3, "only 0's may be mixed with negative subscripts")
  expect_error(b[c(-1, Inf)] <- 3, "only 0's may be mixed with negative subscripts")
  expect_identical(b[], x)
})

test_that("buffer sizes beyond R's limits are clear errors; long vectors are fine", {
  expect_error(shared_buffer("double", c(2^31, 2)), "at most 2147483647")
  expect_error(shared_buffer("double", 2^53), "at most 2\\^52")
  expect_error(shared_buffer("double", -1), "non-negative whole numbers")
  # An `init` the type cannot hold: before, a buffer of NA or 00, silently.
  expect_error(shared_buffer("double", 3, init = "abc"), "cannot be stored in a buffer of type double")
  # R turns "" into NA without a warning: refused as well, here and in `[<-`.
  expect_error(shared_buffer("double", 3, init = ""), "a string that is not a number")
  b <- shared_buffer("double", 2, init = 1)
  expect_error(b[1] <- "", "a string that is not a number")
  b[2] <- "2.5"
  expect_identical(b[], c(1, 2.5))
  expect_error(shared_buffer("integer", 3, init = 3e9), "cannot be stored in a buffer of type integer")
  expect_error(shared_buffer("raw", 3, init = 300), "cannot be stored in a buffer of type raw")
  expect_identical(shared_buffer("integer", 2, init = NA)[], c(NA_integer_, NA_integer_))
  expect_identical(shared_buffer("double", 2, init = TRUE)[], c(1, 1))
  skip_on_cran()
  # A sparse 2 GiB raw vector: no page is touched.
  long <- expect_silent(shared_buffer("raw", 2^31 + 1))
  expect_identical(length(long), 2^31 + 1)
  long[2^31 + 1] <- as.raw(7)
  expect_identical(long[2^31 + 1], as.raw(7))
  close(long)
})

test_that("closing twice does nothing the second time", {
  x <- share(as.numeric(1:10))
  expect_identical(close(x), TRUE)
  expect_identical(close(x), FALSE)
  b <- shared_buffer("integer", 3)
  close(b)
  expect_invisible(close(b))
  df <- share(data.frame(a = as.numeric(1:3), b = c("x", "y", "z")))
  close(df)
  expect_identical(close(df), FALSE)
  # share() may hand back what it did not share (below the threshold, say):
  # closing that is harmless too.
  expect_identical(close(1:3), FALSE)
})

test_that("assigning a closed shared object into a buffer is an error try() catches", {
  b <- shared_buffer("double", 4, 0)
  s <- share(as.numeric(4:1))
  close(s)
  got <- try(b[] <- s, silent = TRUE)
  expect_s3_class(got, "try-error")
  expect_match(conditionMessage(attr(got, "condition")), "was closed")
  got <- try(b[[1]] <- s, silent = TRUE)
  expect_s3_class(got, "try-error")
  b[2] <- 5
  expect_identical(b[], c(0, 5, 0, 0))
})

test_that("the first buffer of a process survives a collection while it is made", {
  # A process's first shared_buffer() allocates (cpp11's token for its
  # unwind_protect()) before the new view was protected: a collection there
  # freed the buffer, and the object returned was freed memory (reading it
  # never returned). Under gctorture() every allocation collects; glibc then
  # overwrites freed memory.
  skip_without_callr()
  got <- callr::r(function() {
    library(shmr)
    gctorture(TRUE)
    b <- shared_buffer("double", 3, init = 2)
    m <- shared_buffer("integer", c(2, 2), init = 1L)
    gctorture(FALSE)
    b[2] <- 5
    # Plain copies: the buffers' regions go with this process.
    list(b = b[1:3] + 0, class = class(b), m = m[, 2] + 0L, shared = c(is_shared(b), is_shared(m)))
  }, env = c(callr::rcmd_safe_env(), MALLOC_PERTURB_ = "165",
             GLIBC_TUNABLES = "glibc.malloc.tcache_count=0"), timeout = 60)
  expect_identical(got$b, c(2, 5, 2))
  expect_identical(got$class, "shmr_buffer")
  expect_identical(got$m, c(1L, 1L))
  expect_identical(got$shared, c(TRUE, TRUE))
})
