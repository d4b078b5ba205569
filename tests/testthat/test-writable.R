# readonly = FALSE: writes reach shared memory and every process; a write
# that R would redirect to a private copy is an error, not a silent copy.

test_that("writes to a writable share are seen by another process, both ways", {
  for (backing in c("shm", "mmap")) {
    w <- share(as.numeric(1:10), readonly = FALSE, backing = backing)
    w[2] <- 200
    m <- share(matrix(0L, 3, 4), readonly = FALSE, backing = backing)
    m[2, 3] <- 7L
    got <- in_other_process(function(wn, mn) {
      w <- map_shared(wn)
      m <- map_shared(mn)
      seen <- list(w = w[2], m = m[2, 3])
      w[10] <- -1
      m[, 4] <- 1:3
      seen
    }, list(wn = shared_name(w), mn = shared_name(m)))
    expect_identical(got$w, 200, info = backing)
    expect_identical(got$m, 7L, info = backing)
    expect_identical(w[10], -1, info = backing)
    expect_identical(m[, 4], 1:3, info = backing)
    expect_false(shared_info(w)$readonly, info = backing)
  }
})

test_that("writes by name: [[ writes through, [ with a name makes R's own new vector", {
  w <- share(c(a = 1, b = 2, c = 3), readonly = FALSE)
  name <- shared_name(w)
  region <- map_shared(name)  # keeps the region once `w` no longer reads it
  w[["b"]] <- 22
  seen <- function() in_other_process(function(name) map_shared(name)[], list(name = name))
  expect_identical(seen(), c(a = 1, b = 22, c = 3))
  # As the documentation says: R allocates a new vector for a character
  # index, which is no longer the share.
  w["c"] <- 33
  expect_identical(w, c(a = 1, b = 22, c = 33))
  expect_false(is_shared(w))
  expect_identical(seen(), c(a = 1, b = 22, c = 3))
  expect_identical(region[], c(a = 1, b = 22, c = 3))
})

test_that("a replacement function written in R changes its own copy; an index writes through", {
  w <- share(matrix(as.numeric(1:9), 3), readonly = FALSE)
  name <- shared_name(w)
  region <- map_shared(name)
  w[cbind(1:3, 1:3)] <- 0
  seen <- function() in_other_process(function(name) map_shared(name)[], list(name = name))
  expect_identical(diag(seen()), c(0, 0, 0))
  # As the documentation says: diag<- (R code) changes a copy of its own,
  # which then takes the share's place in `w`.
  diag(w) <- 5
  expect_identical(diag(w), c(5, 5, 5))
  expect_false(is_shared(w))
  expect_identical(diag(seen()), c(0, 0, 0))
  expect_identical(diag(region[]), c(0, 0, 0))
})

test_that("writes from two worker processes to disjoint parts all land", {
  w <- share(numeric(2e5), readonly = FALSE)
  name <- shared_name(w)
  procs <- lapply(1:2, function(k) {
    callr::r_bg(function(name, k) {
      library(shmr)
      w <- map_shared(name)
      half <- length(w) / 2
      idx <- seq_len(half) + (k - 1) * half
      w[idx] <- k
      TRUE
    }, list(name = name, k = k))
  })
  for (p in procs) p$wait(60000)
  for (p in procs) expect_true(p$get_result())
  expect_identical(w[1], 1)
  expect_identical(w[2e5], 2)
  expect_identical(sum(w), 1e5 * 1 + 1e5 * 2)
})

test_that("a write R would send to a private copy is an error", {
  for (n in c(5, 500)) {
    w <- share(as.numeric(seq_len(n)), readonly = FALSE)
    alias <- w
    expect_error(alias[1] <- 0, "another variable refers to the same object", info = n)
    rm(alias)
    # Reads that need a private copy still work: sort() copies deeply.
    expect_identical(sort(w, decreasing = TRUE), as.numeric(n:1), info = n)
    expect_identical(w[], as.numeric(seq_len(n)), info = n)
  }
  s <- share(c("a", "b"), readonly = FALSE)
  expect_error(s[1] <- "z", "cannot be changed in place")
})

test_that("package code changes its own copy of a writable share's character vector: rbind(), replace()", {
  # Before: rbind.data.frame() writes the rows of the other frames into its
  # copy of the first frame's columns, and the copy of a character column
  # raised "character vectors of a writable share cannot be changed in
  # place": reading a writable data frame with a character column failed.
  original <- data.frame(a = c(5, 3, 1), s = c("five", NA, "one"), stringsAsFactors = FALSE)
  more <- data.frame(a = 0, s = "zero", stringsAsFactors = FALSE)
  d <- share(original, readonly = FALSE)
  expect_identical(rbind(d, d), rbind(original, original))
  expect_identical(rbind(d, more), rbind(original, more))
  # So do replace() and `is.na<-`, which change the copy R gives their `x`.
  expect_identical(replace(d$s, 2, "two"), c("five", "two", "one"))
  expect_identical(`is.na<-`(d$s, 1), c(NA, NA, "one"))
  # The share keeps its values, and is still the share.
  expect_identical(as.list(fetch(d)), as.list(original))
  expect_true(is_shared(d$s))
  # A change meant for the share still cannot be made.
  expect_error(d[1, "s"] <- "z", "cannot be changed in place")
  s <- share(c("a", "b"), readonly = FALSE)
  alias <- s
  expect_error(alias[1] <- "z", "cannot be changed in place")
  rm(alias)
  expect_identical(s[], c("a", "b"))
  # And so is a change inside a function you wrote (one of the global
  # environment: a test's functions count as package code).
  got <- in_other_process(function() {
    s <- share(c("a", "b"), readonly = FALSE)
    change <- function(v) {
      v[1] <- "z"
      v
    }
    list(error = tryCatch({
      change(s)
      "no error"
    }, error = conditionMessage), s = fetch(s))
  })
  expect_match(got$error, "cannot be changed in place")
  expect_identical(got$s, c("a", "b"))
})

test_that("base R's C code changes its own copy of a writable share's strings: format(), iconv()", {
  # Before: format() of bytes-encoded or latin1 strings (which it escapes or
  # translates in a copy it makes with duplicate()), iconv() of any strings,
  # enc2native(), enc2utf8(), encodeString() and formatC() raised
  # "character vectors of a writable share cannot be changed in place": the
  # copy was a view of the share that refused the change.
  bytes <- c("a", "b\xff", NA)
  Encoding(bytes) <- "bytes"
  latin1 <- c("a", "caf\xe9", NA)
  Encoding(latin1) <- "latin1"
  inputs <- list(bytes = bytes, latin1 = latin1, utf8 = c("a", "caf\u00e9", NA), plain = c("a", "b", NA))
  reads <- list(
    format = format, format_width = function(v) format(v, width = 6), formatC = formatC,
    data_frame = function(v) format(data.frame(v = v)), print = function(v) capture.output(print(v)),
    enc2native = enc2native, enc2utf8 = enc2utf8, encodeString = encodeString,
    iconv = function(v) iconv(v, "latin1", "UTF-8"),
    iconv_raw = function(v) iconv(v, "latin1", "UTF-8", toRaw = TRUE),
    toupper = toupper, chartr = function(v) chartr("a", "A", v), gsub = function(v) gsub("a", "A", v),
    trimws = trimws, sort = sort, rev = rev
  )
  answer <- function(read, v) tryCatch(read(v), error = conditionMessage)
  names_made <- character()
  kept <- list()  # the shares, alive until the other process has read them
  for (name in names(inputs)) {
    x <- inputs[[name]]
    s <- share(x, readonly = FALSE)
    names_made[name] <- shared_name(s)
    for (read in names(reads))
      expect_identical(answer(reads[[read]], s), answer(reads[[read]], x), info = paste(name, read))
    # At top level of the test too (enc2utf8() is a primitive: no frame).
    expect_identical(format(s), format(x), info = name)
    expect_identical(enc2utf8(s), enc2utf8(x), info = name)
    # The share keeps its values, is still the share, and a change meant
    # for it is still refused.
    expect_identical(s[], x, info = name)
    expect_true(is_shared(s), info = name)
    expect_error(s[2] <- "z", "cannot be changed in place", info = name)
    alias <- s
    expect_error(alias[2] <- "z", "cannot be changed in place", info = name)
    rm(alias)
    kept[[name]] <- s
  }
  seen <- in_other_process(function(names) lapply(names, function(n) map_shared(n)[]),
                           list(names = as.list(names_made)))
  expect_identical(seen, inputs)
})

test_that("after order() of a writable share's strings, a change meant for the share is still refused", {
  # Before: R's writable data pointer (order() asks for one only to read)
  # marked the share's strings written; its copies were then ordinary
  # vectors, and `alias[1] <- "z"`, even `s[1] <- "z"`, changed a private
  # copy silently, `s` no longer the share.
  x <- c("b", "a", "c")
  s <- share(x, readonly = FALSE)
  expect_identical(order(s), c(2L, 1L, 3L))
  expect_identical(sort(s, method = "radix"), c("a", "b", "c"))
  alias <- s
  expect_error(alias[1] <- "z", "cannot be changed in place")
  rm(alias)
  expect_error(s[1] <- "z", "cannot be changed in place")
  expect_identical(s[], x)
  expect_true(is_shared(s))
  # Reads still work, format() included.
  expect_identical(format(s), format(x))
  expect_identical(in_other_process(function(name) map_shared(name)[], list(name = shared_name(s))), x)
})

test_that("columns of a writable data frame or list change in place, as a user writes it", {
  d <- share(data.frame(a = 1:5, b = as.numeric(1:5)), readonly = FALSE)
  name <- shared_name(d)
  # Before, each of these was refused (`[<-.data.frame` and R's nested
  # assignments copy the column); on R >= 4.3 even d$a[3] <- 0L.
  d$a[3] <- 0L
  d[2, "b"] <- 9
  d[["a"]][1] <- 7L
  d[4, 1] <- 40L
  d[d$b > 4, "b"] <- -1
  expected <- list(a = c(7L, 2L, 0L, 40L, 5L), b = c(1, -1, 3, 4, -1))
  expect_identical(as.list(d), expected)
  seen <- in_other_process(function(name) {
    x <- map_shared(name)
    list(a = x$a[], b = x$b[])
  }, list(name = name))
  expect_identical(seen, expected)
  expect_true(is_shared(d$a) && is_shared(d$b))
  # Another variable holding the data frame or the column, or a function
  # changing its argument, is still an error, never a silent private copy.
  alias <- d
  expect_error(alias$a[1] <- 0L, "another variable refers to the same object")
  expect_error(d[1, "a"] <- 0L, "another variable refers to the same object")
  rm(alias)
  column <- d$b
  expect_error(d$b[1] <- 0, "another variable refers to the same object")
  rm(column)
  # A user's function, as a user writes it: one of the global environment.
  got <- in_other_process(function() {
    d <- share(data.frame(a = 1:3), readonly = FALSE)
    change <- function(x) {
      x$a[1] <- 0L
      x
    }
    list(error = tryCatch({
      change(d)
      "no error"
    }, error = conditionMessage), a = d$a[])
  })
  expect_match(got$error, "would go to a private copy, not to shared memory: inside a function")
  expect_identical(got$a, 1:3)
  # A variable of the function's own is refused too, and the message says so
  # rather than calling it an argument.
  got <- in_other_process(function() {
    w <- share(as.numeric(1:4), readonly = FALSE)
    reverse <- function(name) {
      v <- map_shared(name)
      v[4:1] <- v
      v
    }
    list(error = tryCatch({
      reverse(shared_name(w))
      "no error"
    }, error = conditionMessage), w = w[])
  })
  expect_match(got$error, "inside a function you wrote.*a variable of the function's own included")
  expect_identical(got$w, as.numeric(1:4))

  l <- share(list(v = as.numeric(1:3), w = 1:2), readonly = FALSE)
  name <- shared_name(l)
  l$v[2] <- 20
  l[["w"]][1] <- 10L
  seen <- in_other_process(function(name) lapply(map_shared(name), `[`), list(name = name))
  expect_identical(seen, list(v = c(1, 20, 3), w = c(10L, 2L)))
  # The list still reads as its region (R >= 4.3: it is one shared object).
  expect_identical(shared_name(l), name)
  expect_lt(length(serialize(l, NULL)), 400)
})

test_that("local() and within() never write their own copy through to a writable share", {
  # R gives the variable that local() or within() changes a copy of the
  # outer value: writing it through would change the outer variable, the
  # data frame within() returns a new version of, and every process.
  for (n in c(10, 1e5)) {
    w <- share(as.numeric(seq_len(n)), readonly = FALSE)
    d <- share(data.frame(a = seq_len(n), b = as.numeric(seq_len(n))), readonly = FALSE)
    expect_error(local(w[2] <- 0), "another variable refers to the same object", info = n)
    expect_error(local(d$a[2] <- 0L), "another variable refers to the same object", info = n)
    expect_error(within(d, a[2] <- 0L), "another variable refers to the same object", info = n)
    expect_error(within(d, b[d$a > 1] <- 0), "another variable refers to the same object",
                 info = n)
    seen <- in_other_process(function(w, d) {
      d <- map_shared(d)
      list(w = map_shared(w)[1:3], a = d$a[1:3], b = d$b[1:3])
    }, list(w = shared_name(w), d = shared_name(d)))
    expect_identical(seen, list(w = c(1, 2, 3), a = 1:3, b = c(1, 2, 3)), info = n)
    expect_identical(w[2], 2, info = n)
    expect_identical(d$a[2], 2L, info = n)
    # A share local() makes and changes itself is its own to change.
    made <- local({
      v <- share(numeric(n), readonly = FALSE)
      v[2] <- 5
      v
    })
    expect_identical(map_shared(shared_name(made))[2], 5, info = n)
    # The outer variable alone still writes through.
    w[2] <- -2
    expect_identical(map_shared(shared_name(w))[2], -2, info = n)
  }
})

test_that("a function changing a writable share it was given is an error pointing to shared_buffer()", {
  # User code, as a user writes it: a function of the global environment.
  got <- in_other_process(function() {
    f <- function(v) {
      v[1] <- 0
      v
    }
    lapply(c(5, 500), function(n) {
      w <- share(as.numeric(seq_len(n)), readonly = FALSE)
      list(error = tryCatch({
        f(w)
        "no error"
      }, error = conditionMessage), first = map_shared(shared_name(w))[1])
    })
  })
  for (case in got) {
    expect_match(case$error, "inside a function.*shared_buffer\\(\\)")
    expect_identical(case$first, 1)
  }
})

test_that("reads of writable shares with a class are never refused and never change them", {
  for (n in c(10, 1000)) {
    days <- as.Date("2020-01-01") + seq_len(n)
    dt <- share(days, readonly = FALSE)
    fac <- share(factor(rep(c("a", "b"), n / 2)), readonly = FALSE)
    named <- setNames(as.numeric(seq_len(n)), paste0("e", seq_len(n)))
    w <- share(named, readonly = FALSE)
    expect_identical(capture.output(print(dt)), capture.output(print(days)), info = n)
    expect_identical(format(dt), format(days), info = n)
    expect_identical(dt + 1, days + 1, info = n)
    expect_identical(range(dt), range(days), info = n)
    expect_identical(unclass(dt), unclass(days), info = n)
    expect_identical(unclass(fac), unclass(factor(rep(c("a", "b"), n / 2))), info = n)
    expect_identical(unname(w), unname(named), info = n)
    expect_identical(setNames(w, NULL), setNames(named, NULL), info = n)
    # R may write such a result into a temporary copy: never into the share.
    expect_identical(unname(w) * 2, unname(named) * 2, info = n)
    expect_identical(sqrt(unclass(dt)), sqrt(unclass(days)), info = n)
    expect_identical(replace(w, 1, 0)[[1]], 0, info = n)
    seen <- in_other_process(function(a, b) list(map_shared(a)[], map_shared(b)[]),
                             list(a = shared_name(dt), b = shared_name(w)))
    expect_identical(seen[[1]], days, info = n)
    expect_identical(seen[[2]], named, info = n)
  }
})

test_that("a read through R's wrapper of a writable share's copy held by two variables is never refused", {
  # names<- wraps its copy of a vector (R_shallow_duplicate_attr()); `==`
  # and identical() then ask the wrapper for a writable pointer (REAL()) to
  # read it, and R changes a wrapper in place only when one variable holds it.
  for (n in c(100, 1e5)) {
    x <- as.numeric(seq_len(n))
    w <- share(x, readonly = FALSE)
    name <- shared_name(w)
    u <- w
    names(u)[1] <- "a"
    b <- u
    plain <- x
    names(plain)[1] <- "a"
    expect_identical(b == 5, plain == 5, info = n)
    expect_identical(b, plain, info = n)
    expect_identical(u * 2, plain * 2, info = n)
    expect_identical(map_shared(name)[], x, info = n)
    got <- in_other_process(function(name) shmr::map_shared(name)[], list(name = name))
    expect_identical(got, x, info = n)
  }
})

test_that("a renamed copy read beside its share never takes the share's place", {
  # `names(y) <- n` copies a share that two variables hold; R then asks that
  # copy for a writable pointer to read it (sort(), cumsum(), order(),
  # rbind(), pmax(), crossprod()). Settled as the share there, it left `w`
  # a private copy whose next write silently missed shared memory.
  reads <- list(sort = sort, cumsum = cumsum, order = order, rbind = function(v) rbind(v, v),
                pmax = function(v) pmax(v, 2), crossprod = crossprod)
  x <- as.numeric(5:1)
  plain <- setNames(x, letters[1:5])
  for (read in names(reads)) {
    w <- share(x, readonly = FALSE)
    name <- shared_name(w)
    y <- w
    names(y) <- letters[1:5]
    expect_identical(reads[[read]](y), reads[[read]](plain), info = read)
    expect_identical(y[], plain, info = read)
    rm(y)
    w[2] <- 100
    expect_true(is_shared(w), info = read)
    expect_identical(map_shared(name)[2], 100, info = read)
  }
  got <- in_other_process(function(name) shmr::map_shared(name)[], list(name = name))
  expect_identical(got, replace(x, 2, 100))
  # The renamed one read while the other holds the share: its change is a
  # second variable's, refused, until that variable goes.
  w <- share(x, readonly = FALSE)
  name <- shared_name(w)
  y <- w
  names(w) <- letters[1:5]
  expect_identical(sort(w), sort(plain))
  expect_error(w[1] <- 7, "another variable refers to the same object")
  expect_identical(map_shared(name)[], x)
  rm(y)
  w[1] <- 7
  expect_identical(map_shared(name)[], replace(x, 1, 7))
  expect_identical(unname(w[]), replace(x, 1, 7))
  # The same inside local(), whose code is a script's.
  w <- share(x, readonly = FALSE)
  name <- shared_name(w)
  local({
    v <- w
    dim(v) <- c(5L, 1L)
    invisible(crossprod(v))
  })
  w[2] <- 100
  expect_identical(map_shared(name)[], replace(x, 2, 100))
  # A renamed copy of a data frame's column, read while the frame holds it.
  d <- share(data.frame(a = x, b = 1:5), readonly = FALSE)
  name <- shared_name(d)
  y <- d$a
  names(y) <- letters[1:5]
  expect_identical(format(y), format(plain))
  rm(y)
  d$a[2] <- 100
  expect_identical(map_shared(name)$a, replace(x, 2, 100))
})

test_that("writable shares are changed in place when the code runs through source()", {
  # source() (like knitr and an IDE's Source button) keeps the value of the
  # last expression, so R copies the share before the first change.
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  for (n in c(10, 1e5)) {
    writeLines(c(
      sprintf("w <- share(numeric(%d), readonly = FALSE)", n),
      "w[3] <- 42",
      "for (j in 4:6) w[j] <- j",
      sprintf("m <- share(matrix(0, %d, 2), readonly = FALSE)", n),
      "m[, 2] <- 1"
    ), script)
    env <- new.env()
    source(script, local = env)
    seen <- in_other_process(function(w, m) list(map_shared(w)[1:6], sum(map_shared(m)[, 2])),
                             list(w = shared_name(env$w), m = shared_name(env$m)))
    expect_identical(seen[[1]], c(0, 0, 42, 4, 5, 6), info = n)
    expect_identical(seen[[2]], as.numeric(n), info = n)
    expect_true(is_shared(env$w), info = n)
    close(env$w)
    close(env$m)
  }
  writeLines(c("w <- share(numeric(10), readonly = FALSE)", "alias <- w", "alias[1] <- 1"), script)
  expect_error(source(script, local = new.env()), "another variable refers to the same object")
  expect_error(capture.output(utils::example("share", package = "shmr", ask = FALSE)), NA)
})

test_that("share() of a writable share with readonly = TRUE makes a read-only copy", {
  w <- share(as.numeric(1:5), readonly = FALSE)
  r <- share(w, readonly = TRUE)
  expect_true(shared_info(r)$readonly)
  expect_false(identical(shared_name(r), shared_name(w)))
  w[1] <- 100
  expect_identical(r[1], 1)
  expect_identical(share(r), r)
})

test_that("readonly shares never change on disk, for either backing", {
  for (backing in c("shm", "mmap")) {
    x <- share(as.numeric(1:1000), backing = backing)
    path <- shared_info(x)$path
    before <- readBin(path, "raw", file.size(path))
    x[1:10] <- 0
    in_other_process(function(name) {
      y <- map_shared(name)
      y[5] <- 99
      NULL
    }, list(name = shared_name(x)))
    expect_identical(readBin(path, "raw", file.size(path)), before, info = backing)
    expect_identical(format(file.info(path)$mode), "600", info = backing)
  }
})

test_that("a writable share that falls back to a file mapping can be changed in place", {
  # Regression: the fallback message was signalled through cli, which
  # records the calling frames; share()'s frame then kept a second reference
  # to the new object, and its first change was refused as a private copy.
  # Run where nothing else holds the object (expect_message() would), with
  # the message going to a file.
  got <- in_other_process(function() {
    log <- tempfile()
    con <- file(log, "w")
    sink(con, type = "message")
    options(shmr.shm_capacity = 4096)
    w <- share(numeric(1e4), readonly = FALSE)
    sink(type = "message")
    close(con)
    changed <- tryCatch({
      w[3] <- 42
      "changed"
    }, error = function(e) conditionMessage(e))
    list(message = readLines(log), backing = shared_info(w)$backing, changed = changed,
         seen = map_shared(shared_name(w))[3])
  })
  expect_match(paste(got$message, collapse = " "), "too little room")
  expect_identical(got$backing, "mmap")
  expect_identical(got$changed, "changed")
  expect_identical(got$seen, 42)
})

test_that("a permutation of a writable share by a private copy of it writes through correctly", {
  x <- as.numeric(1:6)
  o <- c(3, 1, 2, 6, 5, 4)
  w <- share(x, readonly = FALSE)
  w[o] <- fetch(w)
  x[o] <- x
  expect_identical(w[], x)
  expect_true(is_shared(w))
  skip_without_callr()
  expect_identical(callr::r(function(name) shmr::map_shared(name)[], list(shared_name(w))), x)
})

test_that("a writable share assigned to itself in a new order gets R's values, written through", {
  # R reads the value it assigns (the share, or its copy) element by element
  # after the change began writing the shared elements: those objects keep
  # the values they had.
  x <- as.numeric(1:8)
  o <- c(8, 3, 5, 1, 2, 7, 4, 6)
  w <- share(x, readonly = FALSE)
  m0 <- matrix(as.numeric(1:16), 4)
  m <- share(m0, readonly = FALSE)
  d0 <- data.frame(a = as.numeric(1:8), b = 1:8)
  d <- share(d0, readonly = FALSE)
  # Their names are taken first: the objects after the change are checked
  # elsewhere.
  names <- list(w = shared_name(w), m = shared_name(m), d = shared_name(d))
  w[o] <- w
  x[o] <- x
  expect_identical(w[], x)
  m[4:1, ] <- m
  m0[4:1, ] <- m0
  expect_identical(m[, ], m0)
  d$a[o] <- d$a
  d0$a[o] <- d0$a
  expect_identical(d$a[], d0$a)
  # They are still the shares, and later writes go through too.
  expect_true(is_shared(w) && is_shared(m))
  w[1] <- -1
  m[1, 1] <- -1
  d$a[1] <- -1
  x[1] <- -1
  m0[1, 1] <- -1
  d0$a[1] <- -1
  got <- in_other_process(function(w, m, d) {
    list(w = shmr::map_shared(w)[], m = shmr::map_shared(m)[, ], d = shmr::map_shared(d)$a[])
  }, names)
  expect_identical(got, list(w = x, m = m0, d = d0$a))
  # Byte code (a loop at top level) and a direct call copy differently.
  v <- share(as.numeric(1:8), readonly = FALSE)
  for (i in 1) v[o] <- v
  expect_identical(v[], as.numeric(1:8)[order(o)])
  u <- share(as.numeric(1:8), readonly = FALSE)
  u <- `[<-`(u, o, value = u)
  expect_identical(u[], as.numeric(1:8)[order(o)])
  expect_true(is_shared(v) && is_shared(u))
})

test_that("a Date writable share stays the share after a read, so later writes go through", {
  # `[<-.Date` ends with `class<-`, for which R copies the share; that copy
  # is the variable's value, and format() then asks it for a writable
  # pointer to read it.
  days <- as.Date("2020-01-01") + 0:9
  w <- share(days, readonly = FALSE)
  name <- shared_name(w)
  w[2] <- as.Date("2021-01-01")
  expect_identical(format(w)[2], "2021-01-01")
  w[3] <- as.Date("2022-01-01")
  expect_true(is_shared(w))
  w[4] <- as.Date("2023-01-01")
  days[2:4] <- as.Date(c("2021-01-01", "2022-01-01", "2023-01-01"))
  expect_identical(w[], days)
  got <- in_other_process(function(name) shmr::map_shared(name)[], list(name = name))
  expect_identical(got, days)
  # Read while a list holds it too; and permuted by itself, which `[<-.Date`
  # reads through a copy of its own (unclass()).
  l <- list(w)
  invisible(format(l[[1]]))
  rm(l)
  w[5] <- as.Date("2024-01-01")
  days[5] <- as.Date("2024-01-01")
  o <- c(5, 2, 4, 1, 3, 10, 9, 8, 7, 6)
  w[o] <- w
  days[o] <- days
  expect_true(is_shared(w))
  expect_identical(w[], days)
  got <- in_other_process(function(name) shmr::map_shared(name)[], list(name = name))
  expect_identical(got, days)
})

test_that("loops at top level (byte code) write through as plain statements do", {
  # Byte code copies a shared value at the start of an assignment and keeps
  # no `*tmp*` variable. Code evaluated at top level is what eval() in the
  # global environment runs.
  run <- function(code) eval(parse(text = code), globalenv())
  on.exit(rm(list = intersect(c("lw", "ld", "ld2", "ll", "lx", "lo"), ls(globalenv())),
             envir = globalenv()), add = TRUE)
  run("lw <- share(as.Date('2020-01-01') + 0:4, readonly = FALSE)")
  run("ld <- share(data.frame(a = numeric(5), b = 5:1), readonly = FALSE)")
  run("ll <- share(list(x = as.numeric(1:5)), readonly = FALSE)")
  run("lo <- c(5, 2, 4, 1, 3)")
  names <- list(w = shared_name(globalenv()$lw), d = shared_name(globalenv()$ld),
                l = shared_name(globalenv()$ll))
  run("for (i in 1:3) lw[i] <- lw[5]")
  run("for (i in 1:3) ld$a[i] <- i")
  run("for (i in 4:5) ld[i, 'a'] <- 10 * i")
  run("for (k in 1) ld$b[lo] <- ld$b")
  run("for (k in 1) ll$x[lo] <- ll$x")
  days <- as.Date("2020-01-01") + c(4, 4, 4, 3, 4)
  b <- 5:1
  b[c(5, 2, 4, 1, 3)] <- b
  x <- as.numeric(1:5)
  x[c(5, 2, 4, 1, 3)] <- x
  expect_identical(globalenv()$lw[], days)
  expect_identical(globalenv()$ld$a[], c(1, 2, 3, 40, 50))
  expect_identical(globalenv()$ld$b[], b)
  got <- in_other_process(function(w, d, l) {
    list(w = shmr::map_shared(w)[], a = shmr::map_shared(d)$a[], b = shmr::map_shared(d)$b[],
         x = shmr::map_shared(l)$x[])
  }, names)
  expect_identical(got, list(w = days, a = c(1, 2, 3, 40, 50), b = b, x = x))
  # A second variable holding the data frame or the column is still refused.
  run("ld2 <- ld")
  expect_error(run("for (i in 1:2) ld$a[i] <- 0"), "would go to a private copy")
  run("rm(ld2); lx <- ld$a")
  expect_error(run("for (i in 1:2) ld$a[i] <- 0"), "would go to a private copy")
  expect_identical(in_other_process(function(d) shmr::map_shared(d)$a[], list(names$d)),
                   c(1, 2, 3, 40, 50))
})

test_that("a self-assignment through a data frame's `[<-` method writes through", {
  o <- c(5, 2, 4, 1, 3)
  d <- share(data.frame(a = as.numeric(1:5), b = 5:1), readonly = FALSE)
  e <- share(data.frame(a = as.numeric(1:5), b = 5:1), readonly = FALSE)
  names <- list(d = shared_name(d), e = shared_name(e))
  plain <- data.frame(a = as.numeric(1:5), b = 5:1)
  d[o, "a"] <- d$a
  plain_d <- plain
  plain_d[o, "a"] <- plain_d$a
  e[o, ] <- e
  plain_e <- plain
  plain_e[o, ] <- plain_e
  expect_identical(d[, ], plain_d)
  expect_identical(e[, ], plain_e)
  d$a[1] <- -1
  plain_d$a[1] <- -1
  got <- in_other_process(function(d, e) list(d = shmr::map_shared(d)[, ], e = shmr::map_shared(e)[, ]),
                          names)
  expect_identical(got, list(d = plain_d, e = plain_e))
})

test_that("lists inside lists: a change writes through, and a list holding a column is a second variable", {
  o <- c(5, 2, 4, 1, 3)
  l <- share(list(x = list(y = as.numeric(1:5))), readonly = FALSE)
  name <- shared_name(l)
  l$x$y[1] <- 0
  l$x$y[o] <- l$x$y
  y <- c(0, 2:5)
  y[o] <- y
  expect_identical(l$x$y[], y)
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$x$y[], list(name = name)), y)
  # A list that keeps the column one level down would change with the share.
  d <- share(data.frame(a = as.numeric(1:5)), readonly = FALSE)
  dname <- shared_name(d)
  keep <- list(inner = list(col = d$a))
  expect_error(d$a[1] <- 0, "would go to a private copy")
  expect_identical(keep$inner$col[], as.numeric(1:5))
  rm(keep)
  d$a[1] <- 0
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$a[], list(dname)),
                   c(0, 2:5))
})

test_that("an element of a writable pairlist changes in place; a second variable is refused", {
  p <- share(pairlist(a = as.numeric(1:100), b = letters), readonly = FALSE)
  p$a[1] <- 50
  p[["a"]][2:3] <- c(60, 70)
  expected <- c(50, 60, 70, 4:100)
  expect_identical(p$a[], expected)
  expect_identical(in_other_process(function(s) unserialize(s)$a[], list(serialize(p, NULL))),
                   expected)
  q <- p
  expect_error(q$a[1] <- 0, "another variable refers to the same object")
  expect_identical(p$a[], expected)
  # A pairlist holding a column is a second variable, as a list is.
  d <- share(data.frame(a = as.numeric(1:5)), readonly = FALSE)
  keep <- pairlist(col = d$a)
  expect_error(d$a[1] <- 0, "another variable refers to the same object")
  expect_identical(keep$col[], as.numeric(1:5))
})

test_that("one vector held in two places of a writable share gets two nodes: a change to one leaves the other", {
  d <- data.frame(x = c(1, 2, 3))
  d$y <- d$x  # one object in R until either column changes
  w <- share(d, readonly = FALSE)
  name <- shared_name(w)
  w$x[1] <- 100
  expect_identical(w$y[], c(1, 2, 3))
  expect_identical(in_other_process(function(name) shmr::map_shared(name)[, ], list(name)),
                   data.frame(x = c(100, 2, 3), y = c(1, 2, 3)))
  expect_identical(d, data.frame(x = c(1, 2, 3), y = c(1, 2, 3)))  # the caller's object unchanged

  v <- c(5, 6)
  inner <- list(p = v)
  l <- share(list(a = v, b = v, i = inner, j = inner), readonly = FALSE)
  lname <- shared_name(l)
  l$a[1] <- 0
  l$i$p[2] <- 0
  expect_identical(in_other_process(function(name) shmr::map_shared(name)[], list(lname)),
                   list(a = c(0, 6), b = c(5, 6), i = list(p = c(5, 0)), j = list(p = c(5, 6))))
  expect_identical(inner, list(p = c(5, 6)))
  # Read-only shares still store such a vector once.
  r <- share(list(a = v, b = v))
  expect_true(identical(shared_name(r$a), shared_name(r$b)))

  # A list held in places that hold it twice, many levels down, would be
  # copied without end: an error, not a hang.
  x <- list(1)
  for (k in 1:40) x <- list(x, x)
  expect_error(share(x, readonly = FALSE), "same lists in too many places")
})

# `[<-.data.frame` changes the columns one after another; a character or
# list column cannot change in place and a factor's `[<-` method changes a
# copy of its own. Other processes must never see the columns written
# before such a column, and the share must stay the share.
refused_frames <- list(
  character = data.frame(a = c(5, 3, 1), b = 1:3, s = c("five", "three", "one")),
  factor = data.frame(a = c(5, 3, 1), b = 1:3, f = factor(c("x", "y", "z"))),
  list = data.frame(a = c(5, 3, 1), b = 1:3, l = I(list(1, 2, 3))),
  # The factor comes first: its private change must not be kept either.
  "factor first" = data.frame(f = factor(c("x", "y", "z")), a = c(5, 3, 1), b = 1:3)
)
for (case in names(refused_frames)) {
  test_that(sprintf("a data frame row change with a %s column is refused before any column is written", case), {
    original <- refused_frames[[case]]
    seen <- function(name) {
      in_other_process(function(name) {
        x <- shmr::map_shared(name)
        list(a = x$a[], b = x$b[])
      }, list(name = name))
    }
    w <- share(original, readonly = FALSE)
    name <- shared_name(w)
    column <- setdiff(names(original), c("a", "b"))
    refusal <- sprintf("not for column '%s'.*nothing was changed", column)
    expect_error(w[2:3, ] <- w[3:2, ], refusal)
    expect_error(w[c(3, 1, 2), ] <- w, refusal)
    expect_identical(seen(name), list(a = c(5, 3, 1), b = 1:3))
    expect_identical(as.list(fetch(w)), as.list(original))
    # The share still writes through, and a second variable is still refused.
    w$a[1] <- 7
    w[2:3, c("a", "b")] <- w[3:2, c("a", "b")]
    expect_identical(seen(name), list(a = c(7, 1, 3), b = c(1L, 3L, 2L)))
    expect_true(is_shared(w$a) && is_shared(w$b))
    v <- w
    expect_error(v$b[1] <- -1L, "another variable refers to the same object")
  })
}

test_that("a data frame row change that would widen a column's type is refused before any column is written", {
  # R puts a double into an integer column by making a new (private) vector,
  # and refuses a double for a raw column: both after the columns before it
  # were written.
  w <- share(data.frame(a = c(1, 2, 3), b = 1:3, r = as.raw(1:3)), readonly = FALSE)
  name <- shared_name(w)
  seen <- function() {
    in_other_process(function(name) as.list(shmr::map_shared(name)[, ]), list(name))
  }
  before <- as.list(fetch(w))
  expect_error(w[1, ] <- list(10, 2.5, as.raw(9)),
               "not for column 'b' \\(of type integer, given values of type double.*nothing was changed")
  expect_error(w[1, c("a", "r")] <- list(10, 9), "not for column 'r'.*nothing was changed")
  expect_identical(seen(), before)
  # Narrower values fit, and write through.
  w[1, ] <- list(10L, NA, as.raw(9))
  expect_identical(seen(), list(a = c(10, 2, 3), b = c(NA, 2L, 3L), r = as.raw(c(9, 2, 3))))
})

test_that("data frame columns whose `[<-` method hands the change on to R's own write through", {
  d <- data.frame(a = c(1, 2, 3), D = as.Date("2020-01-01") + 0:2,
                  t = as.POSIXct("2020-01-01", tz = "UTC") + 0:2, k = as.difftime(1:3, units = "secs"))
  w <- share(d, readonly = FALSE)
  name <- shared_name(w)
  o <- c(3, 1, 2)
  w[o, ] <- w
  d[o, ] <- d
  expect_identical(in_other_process(function(name) as.list(shmr::map_shared(name)[, ]), list(name)),
                   as.list(d))
})

test_that("a recursive index writes a writable list's element through, or is refused", {
  l <- share(list(v = c(1, 2, 3), u = c(4, 5, 6)), readonly = FALSE)
  name <- shared_name(l)
  l[[c(1, 2)]] <- 50
  l[[c(2, 3)]] <- 60
  for (i in 1) l[[c(2, 1)]] <- 40
  expected <- list(v = c(1, 50, 3), u = c(40, 5, 60))
  expect_identical(lapply(l, `[`), expected)
  expect_true(is_shared(l))
  expect_identical(in_other_process(function(name) lapply(shmr::map_shared(name), `[`), list(name)),
                   expected)
  # A second variable: on R >= 4.3 the list is shmr's own object and sees R
  # put its copy of the element in place; on R < 4.3 R puts it in its copy
  # of the list, held twice, and writes into it there.
  alias <- l
  expect_error(l[[c(1, 1)]] <- 0, "another variable refers to the same object")
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$v[], list(name)),
                   c(1, 50, 3))
  # The refused change leaves both variables the share, readable as before.
  expect_true(is_shared(l) && is_shared(alias) && identical(l, alias))
  rm(alias)
  l[[c(1, 1)]] <- 10
  expect_true(is_shared(l))
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$v[], list(name)),
                   c(10, 50, 3))
})

test_that("replacing a whole element of a writable list or column is refused (R >= 4.3), not made private in silence", {
  l <- share(list(a = as.numeric(1:5), b = 1:3, s = list(x = 1)), readonly = FALSE)
  name <- shared_name(l)
  seen <- function(name) in_other_process(function(name) rapply(shmr::map_shared(name), `[`, how = "list"),
                                           list(name))
  d <- share(data.frame(a = c(1, 2, 3), b = 1:3), readonly = FALSE)
  dname <- shared_name(d)
  if (getRversion() < "4.3.0") {
    # A shared list is an ordinary R list of views here: R replaces the
    # element without calling shmr, and the list becomes a private one.
    l$a <- as.numeric(11:15)
    expect_false(is_shared(l))
    expect_identical(seen(name)$a, as.numeric(1:5))
    d$a <- c(7, 8, 9)
    expect_false(is_shared(d))
    expect_identical(seen(dname)$a, c(1, 2, 3))
    return(invisible())
  }
  refused <- "new object in place of element 'a'.*nothing was changed.*l\\$a\\[\\] <- v.*fetch\\(\\)"
  expect_error(l$a <- as.numeric(11:15), refused)
  expect_error(l[["a"]] <- as.numeric(11:15), refused)
  expect_error(l[1] <- list(as.numeric(11:15)), refused)
  expect_error(for (k in 1) l$a <- as.numeric(11:15), refused)  # byte code: no `*tmp*`
  expect_error(local(l$a <- as.numeric(11:15)), refused)
  # Values R puts in a new vector: a wider type, a longer vector, new names.
  expect_error(l$b[1] <- 1.5, "element 'b'")
  expect_error(l$b[4] <- 4L, "element 'b'")
  expect_error(names(l$a) <- letters[1:5], "element 'a'")
  expect_error(l$s$x <- 2, "element 'x'")
  alias <- l
  expect_error(alias$a <- as.numeric(11:15), refused)
  rm(alias)
  set_outer <- function() l$a <<- as.numeric(11:15)
  expect_error(set_outer(), refused)
  expect_true(is_shared(l))
  expect_identical(seen(name), list(a = as.numeric(1:5), b = 1:3, s = list(x = 1)))
  # The element itself put back, and values written in place, stay shared.
  l$a <- l$a
  l$a[] <- as.numeric(11:15)
  l[["b"]][] <- 4:6
  l$s$x[] <- 2
  expect_true(is_shared(l))
  expect_identical(seen(name), list(a = as.numeric(11:15), b = 4:6, s = list(x = 2)))

  for (change in list(quote(d$a <- c(7, 8, 9)), quote(d[["a"]] <- c(7, 8, 9)),
                      quote(d[, "a"] <- c(7, 8, 9)), quote(d["a"] <- list(c(7, 8, 9))),
                      quote(d[1, "b"] <- 1.5))) {
    expect_error(eval(change), "new object in place of element '[ab]'", info = deparse(change))
  }
  # `[<-.data.frame` puts a column written through back in its place.
  d[2, "a"] <- 0
  d$b[3] <- 30L
  d[["a"]][1] <- 10
  expect_true(is_shared(d))
  expect_identical(seen(dname), list(a = c(10, 0, 3), b = c(1L, 2L, 30L)))

  # A copy that package code or a function changes for a value of its own is
  # a private list of its own, as R's semantics have it; the share stays.
  doubled <- transform(d, a = a * 2)
  changed <- modifyList(l, list(a = 0))
  zero_a <- function(x) {
    x$a <- 0
    x
  }
  mine <- zero_a(l)
  expect_identical(doubled$a, c(20, 0, 6))
  expect_identical(changed$a, 0)
  expect_identical(mine$a, 0)
  expect_false(is_shared(doubled) || is_shared(changed) || is_shared(mine))
  expect_true(is_shared(l) && is_shared(d))
  expect_identical(seen(name)$a, as.numeric(11:15))
  expect_identical(seen(dname)$a, c(10, 0, 3))
})

test_that("a function's superassignment to a writable list of the script writes through", {
  # `l$v[i] <<- x` keeps R's `*tmp*` in the function's frame and changes
  # the script's variable, the share's only one.
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(c(
    "l <- share(list(v = numeric(4)), readonly = FALSE)",
    "name <- shared_name(l)",
    "g <- function(i) l$v[i] <<- i",
    "g(2)",
    "for (i in 3:4) g(i)"
  ), script)
  env <- new.env(parent = globalenv())
  source(script, local = env)
  expect_identical(env$l$v[], c(0, 2, 3, 4))
  expect_true(is_shared(env$l$v))
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$v[], list(env$name)),
                   c(0, 2, 3, 4))
  # A second variable of the script is still refused.
  writeLines(c(
    "l <- share(list(v = numeric(4)), readonly = FALSE)",
    "alias <- l",
    "g <- function(i) l$v[i] <<- i",
    "g(2)"
  ), script)
  env <- new.env(parent = globalenv())
  expect_error(source(script, local = env), "another variable refers to the same object")
  expect_identical(env$alias$v[], numeric(4))
})

test_that("a wide writable data frame (64 columns or more) writes row changes through", {
  # R wraps a list of 64 elements or more instead of copying it (R >= 4.3),
  # and copied the small elements of such a list (R < 4.3, and on reading).
  for (rows in c(3, 10)) {
    d <- as.data.frame(matrix(as.numeric(seq_len(rows * 80)), rows))
    w <- share(d, readonly = FALSE)
    name <- shared_name(w)
    w[1:2, ] <- w[2:1, ]
    d[1:2, ] <- d[2:1, ]
    w$V80[rows] <- -1
    d$V80[rows] <- -1
    expect_true(is_shared(w$V1) && is_shared(w$V80), info = paste(rows, "rows"))
    expect_identical(in_other_process(function(name) as.list(shmr::map_shared(name)[, ]), list(name)),
                     as.list(d), info = paste(rows, "rows"))
    expect_identical(as.list(w[, ]), as.list(d), info = paste(rows, "rows"))
  }
})

test_that("a writable data frame or list is still its share after a column is written", {
  # On R < 4.3 a data frame's `[<-` and `$<-` methods return R's copy of the
  # list, holding the column that wrote through: it is the share all the same.
  x <- list(a = as.numeric(1:5), b = 1:5)
  check <- function(w, name, info) {
    expect_true(is_shared(w), info = info)
    expect_identical(shared_name(w), name, info = info)
    seen <- in_other_process(function(name) shmr::map_shared(name)$a[], list(name))
    expect_identical(seen, c(0, 2, 3, 4, 5), info = info)
  }
  for (kind in c("data.frame", "list")) {
    y <- if (kind == "data.frame") as.data.frame(x) else x
    w <- share(y, readonly = FALSE)
    n <- shared_name(w)
    w$a[1] <- 0
    check(w, n, paste(kind, "w$a[1]"))
    w <- share(y, readonly = FALSE)
    n <- shared_name(w)
    w[["a"]][1] <- 0
    check(w, n, paste(kind, "w[['a']][1]"))
    w <- share(y, readonly = FALSE)
    n <- shared_name(w)
    w[[1]][1] <- 0
    check(w, n, paste(kind, "w[[1]][1]"))
  }
  w <- share(as.data.frame(x), readonly = FALSE)
  n <- shared_name(w)
  w[1, "a"] <- 0
  check(w, n, "w[1, 'a']")
  w <- share(as.data.frame(x), readonly = FALSE)
  n <- shared_name(w)
  w[1, ] <- list(0, 10L)
  check(w, n, "w[1, ]")
  # A list R built anew from the share's columns is the share too, as it is
  # on R >= 4.3; one holding other values is not.
  expect_true(is_shared(unclass(w)))
  expect_false(is_shared(list(a = w$a, b = w$b[])))
})

test_that("a list inside a writable list changed in place leaves the outer list shared", {
  l <- share(list(a = list(b = c(1, 2, 3), z = 1), y = 2), readonly = FALSE)
  name <- shared_name(l)
  l[[c(1, 1, 2)]] <- 0
  l$a$b[3] <- 9
  l[[1]][[1]][1] <- 7
  expect_true(is_shared(l))
  expect_identical(shared_name(l), name)
  expect_identical(l$a$b[], c(7, 0, 9))
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$a$b[], list(name)),
                   c(7, 0, 9))
  alias <- l
  expect_error(l[[c(1, 1, 1)]] <- -1, "another variable refers to the same object")
  expect_true(identical(l, alias) && is_shared(l))
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$a$b[], list(name)),
                   c(7, 0, 9))
})

test_that("a row change of a date-time column writes through and leaves the data frame shared", {
  t0 <- as.POSIXct("2020-01-01", tz = "UTC") + 0:2
  now <- as.POSIXct("2024-05-05 10:00:00", tz = "UTC")
  w <- share(data.frame(a = c(1, 2, 3), t = t0), readonly = FALSE)
  name <- shared_name(w)
  w[1, "t"] <- now
  w$t[2] <- now + 1
  l <- share(list(t = t0), readonly = FALSE)
  lname <- shared_name(l)
  l$t[3] <- now + 2
  expect_true(is_shared(w) && is_shared(w$t) && is_shared(l) && is_shared(l$t))
  expect_identical(shared_name(w), name)
  t1 <- t0
  t1[1:2] <- c(now, now + 1)
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$t[], list(name)), t1)
  t0[3] <- now + 2
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$t[], list(lname)), t0)
  # Later writes still go through.
  w[3, "a"] <- 30
  expect_identical(in_other_process(function(name) shmr::map_shared(name)$a[], list(name)), c(1, 2, 30))
})

test_that("a Date stored as integers is refused doubles, and written through given integers", {
  days <- structure(1:3, class = "Date")
  w <- share(days, readonly = FALSE)
  name <- shared_name(w)
  d <- share(data.frame(a = c(1, 2, 3), D = days), readonly = FALSE)
  dname <- shared_name(d)
  # `[<-.Date` makes the value a double, and R then puts the integers in a
  # new vector of doubles: no value written in place could come out.
  refusal <- "stored as integers.*fetch\\(\\)"
  expect_error(w[1] <- as.Date("1970-01-10"), refusal)
  expect_error(d[1, "D"] <- as.Date("1970-01-10"), refusal)
  expect_error(d$D[2] <- as.Date("1970-01-11"), refusal)
  expect_error(d[1, ] <- list(10, as.Date("1970-01-10")), "not for column 'D'.*nothing was changed")
  seen <- function() {
    in_other_process(function(w, d) list(w = unclass(shmr::map_shared(w)[]),
                                         d = as.list(shmr::map_shared(d)[, ])), list(name, dname))
  }
  expect_identical(seen(), list(w = 1:3, d = list(a = c(1, 2, 3), D = days)))
  expect_true(is_shared(w) && is_shared(d) && typeof(w) == "integer" && typeof(d$D) == "integer")
  w[1] <- structure(10L, class = "Date")
  d[1, "D"] <- structure(10L, class = "Date")
  days[1] <- structure(10L, class = "Date")
  expect_identical(seen(), list(w = unclass(days), d = list(a = c(1, 2, 3), D = days)))
  expect_true(is_shared(w) && is_shared(d))
})
