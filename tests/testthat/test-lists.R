# Shared lists and data frames: one ALTREP list on R >= 4.3 (it travels as
# its region's name and node and comes back shared anywhere), an ordinary
# list of views on older R. Identity never rests on an address R can reuse,
# and a list's region lives exactly as long as the list.

has_list_views <- function() getRversion() >= "4.3.0"
skip_without_list_views <- function() {
  skip_if_not(has_list_views(), "ALTREP lists need R >= 4.3")
}

serialized_size <- function(x) length(serialize(x, NULL))

# Regions of this process in the shm directory.
my_regions <- function() {
  r <- shared_regions()
  r$name[r$creator_pid %in% Sys.getpid()]
}

test_that("a shared data frame serializes as one name (R >= 4.3), at most mori's size", {
  skip_without_list_views()
  two <- data.frame(a = runif(1e4), b = runif(1e4))
  hundred <- as.data.frame(matrix(runif(100 * 1e4), ncol = 100))
  s2 <- share(two)
  s100 <- share(hundred)
  expect_lt(serialized_size(s2), 250)
  expect_lt(serialized_size(s100), 1400)
  if (requireNamespace("mori", quietly = TRUE)) {
    expect_lte(serialized_size(s2), serialized_size(mori::share(two)))
    expect_lte(serialized_size(s100), serialized_size(mori::share(hundred)))
  }
  # The size does not grow with the columns' data or with nesting.
  nested <- share(list(frames = list(two, hundred), more = list(list(list(runif(1e5))))))
  expect_lt(serialized_size(nested), 300)
  expect_identical(unserialize(serialize(s2, NULL)), two)
  expect_identical(unserialize(serialize(s100, NULL)), hundred)
})

test_that("on R < 4.3 each column costs what R writes for an ALTREP element, no more", {
  skip_if(has_list_views(), "R >= 4.3 sends a shared list as one object")
  frame <- function(n) as.data.frame(matrix(runif(n * 1e3), ncol = n))
  f100 <- frame(100)
  f200 <- frame(200)
  names_cost <- serialized_size(names(f200)) - serialized_size(names(f100))
  per_column <- (serialized_size(share(f200)) - serialized_size(share(f100)) - names_cost) / 100
  # R writes 44 bytes around every ALTREP element (its flags, the class
  # and package, the type, the attributes); the state is the node and the
  # name without its prefix in a raw vector (31 bytes). It was 79 before.
  expect_lte(per_column, 75)
  # In a long list, elements smaller than that travel by value, as in the
  # plain list.
  small <- as.list(1:1e4)
  expect_identical(serialized_size(share(small)), serialized_size(small))
})

test_that("in a long list small elements are copies, in a short one views", {
  # A view costs more to make, hold and send than a few bytes of data; the
  # list itself stays shared (one ALTREP list on R >= 4.3).
  long <- share(c(list(tiny = 1:3, word = "ab", big = runif(100)), as.list(1:61)))
  expect_false(is_shared(long$tiny))
  expect_false(is_shared(long$word))
  expect_true(is_shared(long$big))
  expect_identical(long$tiny, 1:3)
  expect_identical(long$word, "ab")
  expect_identical(unname(unlist(long[-(1:3)])), 1:61)
  expect_true(is_shared(long))
  short <- share(list(tiny = 1:3, big = runif(100)))
  expect_true(is_shared(short$tiny))
  expect_identical(share(short$tiny), short$tiny)
})

test_that("a shared list comes back shared from another process, with its name and path", {
  skip_without_list_views()
  original <- list(a = runif(100), b = list(c = letters, d = 1:5), e = quote(x + y), f = NULL,
                   g = data.frame(x = 1:3, y = c("p", "q", "r")))
  s <- share(original)
  name <- shared_name(s)
  got <- in_other_process(function(bytes, original) {
    u <- unserialize(bytes)
    b <- u$b
    list(
      shared = c(is_shared(u), is_shared(b), is_shared(u$g), is_shared(b$c)),
      names = c(shared_name(u), shared_name(b), shared_name(u$g), shared_name(b$c)),
      path = shared_info(u)$path,
      unchanged = c(identical(share(u), u), identical(share(b), b)),
      same_name_after_share = identical(shared_name(share(b)), shared_name(b)),
      equal = identical(fetch(u), original) && identical(u, original),
      again = length(serialize(u, NULL)),
      sub = unserialize(serialize(b, NULL))
    )
  }, list(bytes = serialize(s, NULL), original = original))
  expect_true(all(got$shared))
  expect_identical(got$names, c(name, paste0(name, c("[2]", "[5]", "[2,1]"))))
  expect_identical(got$path, shared_info(s)$path)
  expect_true(all(got$unchanged))
  expect_true(got$same_name_after_share)
  expect_true(got$equal)
  expect_lt(got$again, 200)
  expect_identical(got$sub, original$b)
  # In this process too, after a round trip.
  u <- unserialize(serialize(s, NULL))
  expect_true(is_shared(u))
  expect_identical(shared_name(u), name)
  expect_identical(share(u), u)
})

test_that("R's list operations see the shared data frame as the original", {
  df <- data.frame(id = 1:2000, value = runif(2000), label = sample(letters, 2000, TRUE),
                   group = factor(sample(c("x", "y"), 2000, TRUE)))
  s <- share(df)
  expect_identical(s[["value"]], df[["value"]])
  expect_identical(s$label, df$label)
  expect_identical(s[c("id", "group")], df[c("id", "group")])
  expect_identical(s[10:20, ], df[10:20, ])
  expect_identical(s[s$value > 0.5, "id"], df[df$value > 0.5, "id"])
  expect_identical(lapply(s, class), lapply(df, class))
  expect_identical(vapply(s[1:2], sum, 0), vapply(df[1:2], sum, 0))
  expect_identical(as.list(s), as.list(df))
  expect_identical(unlist(s[1:2]), unlist(df[1:2]))
  expect_identical(rev(s), rev(df))
  expect_identical(split(s$value, s$group), split(df$value, df$group))
  expect_identical(do.call(cbind, s[1:2]), do.call(cbind, df[1:2]))
  expect_identical(head(s), head(df))
  expect_identical(summary(s), summary(df))
  expect_identical(merge(s, s[1:10, ], by = "id"), merge(df, df[1:10, ], by = "id"))
  expect_identical(Map(function(a, b) a + b, s$id, s$value)[1:3],
                   Map(function(a, b) a + b, df$id, df$value)[1:3])
})

test_that("a change makes a private list and never changes the region", {
  s <- share(list(a = runif(100), b = 2, c = list(d = letters)))
  name <- shared_name(s)
  kept <- fetch(s)

  copy <- s
  copy$b <- 5
  copy$a[1] <- -1
  expect_identical(copy$b, 5)
  expect_identical(copy$a[1], -1)
  expect_false(is_shared(copy))
  expect_identical(fetch(s), kept)

  # The only reference: R changes the list itself (Set_elt on R >= 4.3).
  alone <- map_shared(name)
  alone$b <- 7
  alone[["c"]]$d <- "z"
  expect_identical(alone$b, 7)
  expect_identical(alone$c$d, "z")
  expect_false(is_shared(alone))
  back <- unserialize(serialize(alone, NULL))
  expect_identical(back$b, 7)
  expect_identical(back$a, kept$a)
  expect_false(is_shared(back))

  # Removing, adding and renaming elements.
  gone <- map_shared(name)
  gone$b <- NULL
  expect_identical(names(gone), c("a", "c"))
  grown <- map_shared(name)
  grown$extra <- 1
  expect_identical(length(grown), 4L)

  renamed <- map_shared(name)
  names(renamed) <- c("x", "y", "z")
  expect_identical(renamed$y, 2)
  expect_identical(names(unserialize(serialize(renamed, NULL))), c("x", "y", "z"))

  # Nothing of it reached the region, here or elsewhere.
  expect_identical(fetch(map_shared(name)), kept)
  expect_identical(in_other_process(function(name) fetch(map_shared(name)), list(name = name)), kept)
})

test_that("a list holding no vector is freed by gc() like any object", {
  restore <- use_private_shm()
  on.exit(restore())
  before <- my_regions()
  x <- share(list(a = NULL, b = quote(x + y), f = function(v) v))
  d <- share(data.frame())
  expect_identical(x$b, quote(x + y))
  expect_identical(d, data.frame())
  if (has_list_views()) {
    expect_true(is_shared(x))
    expect_true(all(c(shared_name(x), shared_name(d)) %in% my_regions()))
  } else {
    # Without ALTREP lists nothing would show when it is collected: it is an
    # ordinary copy, and its region is gone already.
    expect_false(is_shared(x))
  }
  rm(x, d)
  gc()
  expect_setequal(my_regions(), before)
})

test_that("mapping one region 300 times adds no mappings once the copies are collected", {
  restore <- use_private_shm()
  on.exit(restore())
  got <- in_other_process(function(shm) {
    region_maps <- function() sum(grepl(shm, readLines("/proc/self/maps"), fixed = TRUE))
    counts <- list()
    for (kind in c("no_vector", "vectors")) {
      name <- paste0("lists_", kind)
      x <- if (kind == "no_vector") share(list(a = NULL, b = quote(x + y)), name = name) else
        share(list(a = runif(1e4), b = list(c = letters)), name = name)
      gc()
      before <- region_maps()
      for (i in 1:300) {
        y <- map_shared(name)
        force(y$b)
        rm(y)
        gc()
      }
      counts[[kind]] <- c(before = before, after = region_maps())
      remove_shared(name)
    }
    counts
  }, list(shm = Sys.getenv("SHMR_SHM_DIR")))
  for (kind in names(got)) expect_lte(got[[kind]][["after"]], got[[kind]][["before"]] + 1, label = kind)
})

test_that("a new list at an address R reused is never taken for a shared one", {
  # This loop aborted R 4.2 with "free(): double free detected in tcache 2".
  got <- in_other_process(function() {
    hits <- 0
    for (i in 1:2000) {
      q <- share(list(NULL, NULL))
      rm(q)
      invisible(gc())
      z <- list(NULL, NULL)
      if (is_shared(z)) hits <- hits + 1
    }
    q <- share(list(runif(100), NULL))
    rm(q)
    invisible(gc())
    for (i in 1:2000) {
      z <- list(NULL, NULL)
      if (is_shared(z)) hits <- hits + 1
    }
    live <- share(list(runif(100), NULL))
    closed_new <- tryCatch(close(list(NULL, NULL)), error = function(e) "refused")
    list(hits = hits, closed_new = closed_new, live = sum(live[[1]]) > 0 && is_shared(live),
         left = sum(shared_regions()$creator_pid == Sys.getpid()))
  })
  expect_identical(got$hits, 0)
  # close() of a list that was never shared releases nothing (and so returns
  # FALSE, as for anything share() handed back unshared).
  expect_identical(got$closed_new, FALSE)
  expect_true(got$live)
  expect_identical(got$left, 1L)
})

test_that("pairlists and 1-d arrays with names come back identical", {
  cases <- list(
    pairlist = pairlist(a = 1, b = "x", c = runif(50)),
    pairlist_in_list = list(p = pairlist(u = 1:3, v = letters), w = 2),
    array_names = as.array(c(a = 1, b = 2, c = 3)),
    array_long_names = as.array(setNames(runif(200), paste0("n", 1:200))),
    array_dimnames_named = array(1:3, 3, dimnames = list(k = c("a", "b", "c"))),
    table = table(g = c("a", "b", "a")),
    tapply = tapply(1:10, rep(c("x", "y"), 5), sum),
    list_array = as.array(list(a = 1, b = "z")),
    in_list = list(t = table(c("p", "q", "p")), a = as.array(c(x = 1L, y = 2L)))
  )
  for (case in names(cases)) {
    x <- cases[[case]]
    s <- share(x)
    expect_identical(s, x, info = case)
    expect_identical(fetch(s), x, info = case)
    expect_identical(s[], x[], info = case)
    expect_identical(names(s), names(x), info = case)
  }
  shared <- lapply(cases, share)
  for (case in c("array_names", "array_long_names", "table", "tapply"))
    expect_true(is_shared(shared[[case]]), info = case)
  bytes <- serialize(shared, NULL)
  back <- in_other_process(function(bytes) lapply(unserialize(bytes), fetch), list(bytes = bytes))
  expect_identical(back, cases)
})

test_that("a shared list of a million small elements is no bigger to send than the list", {
  skip_on_cran()
  x <- as.list(seq_len(1e6))
  s <- share(x)
  expect_lte(serialized_size(s), serialized_size(x))
  if (has_list_views()) expect_lt(serialized_size(s), 200)
  total <- in_other_process(function(bytes) {
    u <- unserialize(bytes)
    c(sum = sum(unlist(u)), n = length(u))
  }, list(bytes = serialize(s, NULL)))
  expect_identical(total, c(sum = sum(as.numeric(1:1e6)), n = 1e6))
})

test_that("a closed shared list refuses its data with an error", {
  s <- share(list(a = runif(100), b = list(c = letters)))
  a <- s$a
  close(s)
  expect_error(sum(a), "closed")
  if (has_list_views()) expect_error(s$b, "closed")
  expect_false(is_shared(s))
})

test_that("a list's elements read its own region after its name was taken by a newer one", {
  name <- paste0("list_then_taken_", Sys.getpid())
  on.exit(try(remove_shared(name), silent = TRUE), add = TRUE)
  value <- data.frame(u = c(1.5, 2.5), v = c("x", "y"))
  old <- share(value, name = name, persist = TRUE)
  # Another object views the same columns in this process, so reading them
  # through `old` needs another mapping of the region's file.
  other <- unserialize(serialize(old, NULL))
  expect_identical(list(other$u, other$v), list(value$u, value$v))
  expect_true(remove_shared(name))
  newer <- share(data.frame(u = c("p", "q"), v = c(7, 8)), name = name, persist = TRUE)
  expect_identical(old$u, value$u)
  expect_identical(old$v, value$v)
  expect_identical(fetch(old), value)
  expect_identical(unserialize(serialize(old, NULL)), value)
  expect_identical(fetch(newer), data.frame(u = c("p", "q"), v = c(7, 8)))
})

test_that("a column written in place by C code travels with its new values, and unnamed", {
  write <- in_place_writers()
  # Columns of many pages, written in the middle: a write is seen a page at
  # a time, and a column that shares the written page with another counts
  # as written too.
  n <- 1e5
  at <- n / 2
  df <- share(data.frame(a = as.numeric(seq_len(n)), b = as.numeric(seq_len(n)) + n))
  name <- shared_name(df)
  # Reads that ask R for a writable pointer to a column write nothing: the
  # data frame still travels by name.
  invisible(list(sum(df$a), df$a == 2, range(df$b)))
  expect_identical(shared_name(df), name)
  if (has_list_views()) expect_lt(serialized_size(df), 250)

  write$double(df$a, at, 333)
  written <- replace(as.numeric(seq_len(n)), at, 333)
  expect_equal(df$a, written)
  expect_null(shared_name(df))
  back <- unserialize(serialize(df, NULL))
  expect_equal(back$a, written)
  expect_equal(back$b, as.numeric(seq_len(n)) + n)
  # A deep copy C code makes keeps the write.
  expect_equal(write$deep_copy(df)$a, written)
  # The column nobody wrote still travels as the region's.
  expect_true(is_shared(back$b))
  # A worker given the data frame sees the write; the region is unchanged.
  seen <- in_other_process(function(d, name) list(d$a, map_shared(name)$a),
                           list(df, name))
  expect_equal(seen[[1]], written)
  expect_equal(seen[[2]], as.numeric(seq_len(n)))
  # share() makes a new region of it instead of handing out the old one.
  again <- share(df)
  expect_false(identical(shared_name(again), name))
  expect_equal(in_other_process(function(name) map_shared(name)$a, list(shared_name(again))),
               written)
})

test_that("a write by C code deep in a shared list, or into its strings, travels too", {
  write <- in_place_writers()
  l <- share(list(inner = list(v = as.numeric(1:3), w = as.numeric(4:6)), s = c("x", "y")))
  write$double(l$inner$v, 2, -1)
  back <- unserialize(serialize(l, NULL))
  expect_equal(back$inner$v, c(1, -1, 3))
  expect_equal(back$inner$w, as.numeric(4:6))
  write$string(l$s, 1, "changed")
  expect_identical(in_other_process(function(x) x$s, list(l)), c("changed", "y"))
  expect_null(shared_name(l))
  # In a long list a small element is a copy, compared with its bytes (on
  # R < 4.3 such a list, holding no view, is an ordinary list with no name).
  long <- share(lapply(1:100, function(i) c(i, i + 0.5)))
  invisible(lapply(long, sum))
  if (has_list_views()) expect_false(is.null(shared_name(long)))
  write$double(long[[10]], 2, -1)
  expect_null(shared_name(long))
  expect_identical(unserialize(serialize(long, NULL))[[10]], c(10, -1))
  # A list whose elements were only read keeps its name.
  m <- share(list(inner = list(v = as.numeric(1:3)), s = c("x", "y")))
  invisible(list(sum(m$inner$v), nchar(m$s)))
  expect_false(is.null(shared_name(m)))
  expect_identical(unserialize(serialize(m, NULL))$inner$v, as.numeric(1:3))
})

test_that("an attribute C code set in place on an element travels; an untouched list keeps its name", {
  write <- in_place_writers()
  n <- 1e5
  # Columns that are views, small elements that are copies, and an element
  # of a nested list.
  df <- share(data.frame(a = as.numeric(seq_len(n)), b = as.numeric(seq_len(n))))
  l <- share(list(v = as.numeric(1:3), inner = list(w = as.numeric(4:6)), s = c("x", "y")))
  # Elements with attributes of every kind of stored value (small and large
  # strings, a list of dimnames, a factor's levels, a time zone), all read:
  # nothing was changed, so the list still travels by name.
  levels <- paste0("level", 1:50)
  untouched <- share(list(
    d = data.frame(a = as.numeric(seq_len(n)), f = factor(rep_len(levels, n), levels = levels),
                   t = as.Date("2020-01-01") + seq_len(n)),
    m = matrix(as.numeric(1:6), 2, dimnames = list(c("r1", "r2"), c("a", "b", "c"))),
    p = structure(as.POSIXct("2021-05-01", tz = "UTC") + seq_len(n), label = "when")
  ))
  original <- lapply(untouched, fetch)
  invisible(list(df$a, df$b, l$v, l$inner$w, l$s, untouched$d$a, untouched$d$f, untouched$d$t,
                 untouched$m, untouched$p))
  name <- shared_name(untouched)
  expect_false(is.null(name))
  expect_false(is.null(shared_name(df)))
  expect_false(is.null(shared_name(untouched$d)))
  if (has_list_views()) expect_lt(serialized_size(untouched), 300)

  write$set_attribute(df$a, "label", "Column A")
  write$set_attribute(l$v, "units", "cm")
  write$set_attribute(l$inner$w, "names", c("p", "q", "r"))
  # Its name would give the old attributes back.
  expect_null(shared_name(df))
  expect_null(shared_name(l))
  got <- in_other_process(function(d, l, name) {
    list(label = attr(d$a, "label"), units = attr(l$v, "units"), names = names(l$inner$w),
         data = list(d$a[1:3], as.vector(l$v)), mapped = lapply(map_shared(name), fetch))
  }, list(df, l, name))
  expect_identical(got$label, "Column A")
  expect_identical(got$units, "cm")
  expect_identical(got$names, c("p", "q", "r"))
  expect_identical(got$data, list(c(1, 2, 3), c(1, 2, 3)))
  expect_identical(got$mapped, original)
  expect_identical(attr(unserialize(serialize(df, NULL))$a, "label"), "Column A")
})

test_that("a character column that order() read keeps its name; a write through its pointer is seen", {
  write <- in_place_writers()
  n <- 1e5
  words <- paste0("w", sample(n))
  df <- share(data.frame(s = words, v = seq_len(n)))
  name <- shared_name(df)
  # order() asks R for a writable pointer to the strings, only to read them:
  # the data frame still travels by name, not as its strings.
  top <- df[order(df$s), ][1:3, ]
  expect_identical(top$s, sort(words)[1:3])
  expect_identical(shared_name(df), name)
  expect_identical(shared_name(df$s), paste0(name, "[1]"))
  if (has_list_views()) expect_lt(serialized_size(df), 400)
  s <- share(words)
  invisible(order(s))
  expect_false(is.null(shared_name(s)))
  expect_lt(serialized_size(s), 400)
  # Written through the pointer R was handed: seen at the next check.
  value <- "changed"
  write$string_pointer(s, 2, value)
  expect_null(shared_name(s))
  expect_identical(unserialize(serialize(s, NULL))[1:2], c(words[1], "changed"))
  expect_identical(in_other_process(function(x) x[1:2], list(s)), c(words[1], "changed"))
  expect_identical(fetch(share(s))[2], "changed")
})

test_that("a write after a check that found none is seen as well", {
  write <- in_place_writers()
  n <- 1e5
  at <- n / 2
  x <- share(as.numeric(seq_len(n)))
  invisible(x == 5)
  expect_false(is.null(shared_name(x)))
  write$double(x, at, -1)
  expect_null(shared_name(x))
  expect_identical(unserialize(serialize(x, NULL))[at], -1)
  # A column R was just handed a writable pointer to, checked (nothing
  # written), then written through a pointer asked for again.
  df <- share(data.frame(a = as.numeric(seq_len(n)), b = as.numeric(seq_len(n))))
  column <- df$a
  invisible(column == 5)
  expect_false(is.null(shared_name(df)))
  write$double(column, at, -1)
  expect_null(shared_name(df))
  expect_identical(unserialize(serialize(df, NULL))$a[at], -1)
  expect_identical(in_other_process(function(d, at) d$a[at], list(df, at)), -1)
})

test_that("one vector in many places of a list is one object, not a mapping per place", {
  live <- function() shmr:::mapping_stats()[["live"]]
  v <- runif(100)
  s <- share(rep(list(v), 3000))
  before <- live()
  total <- 0
  for (i in seq_along(s)) total <- total + s[[i]][1]
  expect_equal(total, 3000 * v[1])
  expect_lte(live() - before, 2)
  expect_identical(s[[1]], s[[3000]])
  # split() pieces share their factor's levels (a character vector).
  n <- 3000
  df <- data.frame(g = seq_len(n), f = factor(sample(paste0("level_", 1:50), n, TRUE),
                                             levels = paste0("level_", 1:50)))
  pieces <- share(split(df, df$g))
  before <- live()
  levels_seen <- 0
  for (i in seq_along(pieces)) levels_seen <- levels_seen + nlevels(pieces[[i]]$f)
  expect_identical(levels_seen, 50 * n)
  expect_lte(live() - before, 2)
  expect_identical(as.character(pieces[[7]]$f), as.character(df$f[7]))
  # One environment held twice is one environment, as in the list shared.
  e <- new.env()
  l <- share(list(a = e, b = e, v = 1:3))
  expect_identical(l$a, l$b)
})

test_that("a deep copy of a shared list keeps the environments it holds (R >= 4.3)", {
  skip_without_list_views()
  skip_if_not_installed("rlang")
  e <- new.env()
  s <- share(list(e = e, v = as.numeric(1:3)))
  assign("x", 1, envir = s$e)
  copy <- rlang::duplicate(s, shallow = FALSE)
  expect_identical(copy$e, s$e)
  expect_identical(get("x", envir = copy$e), 1)
  expect_identical(copy$v[], as.numeric(1:3))
})

test_that("names longer than the list in an edited stream are an error, not a crash (R >= 4.3)", {
  skip_without_list_views()
  s3 <- share(list(a = 1, b = "x", c = 3L))
  s2 <- share(list(list(1, 2), 5))
  hex <- function(s) paste(as.character(charToRaw(s)), collapse = "")
  stream <- paste(as.character(serialize(s3, NULL)), collapse = "")
  stream <- gsub(hex(sub("^shmr_", "", shared_name(s3))), hex(sub("^shmr_", "", shared_name(s2))),
                 stream)
  edited <- as.raw(strtoi(substring(stream, seq(1, nchar(stream), 2), seq(2, nchar(stream), 2)), 16L))
  x <- unserialize(edited)
  expect_length(x, 2L)
  invisible(x[[1]])
  expect_error(x$c, "names are longer than the list")
})

test_that("a shared list keeps the shared objects its closures and environments hold", {
  # The closure and the environment are stored serialized, naming `v`'s and
  # `w`'s regions; a list that reads them only when first used (R >= 4.3)
  # must keep those regions while it lives, as R 4.2's decoded list does.
  l <- local({
    v <- share(as.numeric(1:10))
    e <- new.env()
    e$w <- share(as.numeric(1:4))
    share(list(f = function() sum(v), e = e, n = 1:3))
  })
  for (i in 1:3) invisible(gc())
  expect_identical(l$f(), 55)
  expect_identical(sum(l$e$w), 10)
  # Another process reads them through the list, by name.
  got <- in_other_process(function(l) c(l$f(), sum(l$e$w)), list(l = l))
  expect_identical(got, c(55, 10))
})

test_that("an environment in a shared list changed in place travels with its change", {
  e <- new.env()
  e$x <- 1
  l <- share(list(e = e, f = local(function() y, list2env(list(y = 2))), v = as.numeric(1:3)))
  assign("x", 5, envir = l$e)
  assign("y", 7, envir = environment(l$f))
  got <- in_other_process(function(l) c(get("x", envir = l$e), l$f(), sum(l$v)), list(l = l))
  expect_identical(got, c(5, 7, 6))
  again <- unserialize(serialize(l, NULL))
  expect_identical(get("x", envir = again$e), 5)
  # The list's vectors still travel by name.
  expect_identical(shared_name(again$v), shared_name(l$v))
})

# One environment in several places of a shared object is one environment,
# as in the object shared (and as R 4.2's eagerly decoded list had it): the
# places decode it through one table per decoded root, however lazily, and
# through whichever list or copy of a list they are read (R >= 4.3).
test_that("one environment at several places of a shared list is one environment", {
  check_one_environment <- function(s) {
    same <- c(identical(s$a, s$c[[1]]), identical(s$a, s$c[[2]]$e), identical(s$a, attr(s$v, "env")))
    assign("w", 2, envir = s$c[[1]])
    c(same, exists("w", envir = s$a, inherits = FALSE))
  }
  environment(check_one_environment) <- globalenv()  # sent to other processes alone
  e <- new.env()
  e$v <- 1
  x <- list(a = e, c = list(e, list(e = e)), v = structure(as.numeric(1:10), env = e))
  s <- share(x)
  # Taken before an environment is read: a list that gave out an
  # environment travels by value since (it may have been changed).
  name <- shared_name(s)
  expect_identical(check_one_environment(s), rep(TRUE, 4))
  expect_false(identical(s$a, e))  # a copy of the environment, as unserialize() makes
  # Where sharing is the point: another process mapping the region, or
  # given the list.
  expect_identical(in_other_process(function(name, check) check(map_shared(name)),
                                    list(name = name, check = check_one_environment)),
                   rep(TRUE, 4))
  if (has_list_views()) {
    expect_identical(in_other_process(function(s, check) check(s),
                                      list(s = share(x), check = check_one_environment)),
                     rep(TRUE, 4))
  }
  # A copy R makes of the list before the environment is read holds the
  # same environment as the list, read after.
  s <- share(x)
  s2 <- s
  s2$x <- 1
  expect_identical(s$a, s2$a)
  expect_identical(s2$c[[1]], s$c[[2]]$e)
  # Two map_shared() results are two decoded objects, as two unserialize()
  # of one stream are: two environments, one in each.
  m1 <- map_shared(name)
  m2 <- map_shared(name)
  expect_false(identical(m1$a, m2$a))
  expect_identical(m1$a, m1$c[[1]])
  expect_identical(m2$a, m2$c[[1]])
})

test_that("one environment sent in one stream through several shared lists is one environment", {
  # A list that travels by value (changed, or one that gave out an
  # environment) or a plain list of several views of one region: the lists
  # that hold the environment travel with it, by value, as R 4.2's do, not
  # each by name as a decoded root of its own with an environment of its own.
  e <- new.env()
  df <- data.frame(z = 1:3)
  attr(df$z, "env") <- e
  x <- list(a = e, df = df, b = list(1, e), p = list(e, 1:3), q = list(e, 4:6))
  check <- function(u) {
    c(identical(u$a, attr(u$df$z, "env")), identical(u$a, u$b[[2]]),
      identical(u$a, u$p2[[1]]), identical(u$a, u$q2[[1]]))
  }
  environment(check) <- globalenv()  # sent to another process alone
  expect_identical(check(unserialize(serialize(c(x, list(p2 = x$p, q2 = x$q)), NULL))), rep(TRUE, 4))
  s <- share(x)
  invisible(s$a)
  changed <- share(x)
  changed$new <- 1
  for (sent in list(s, changed)) {
    got <- check(unserialize(serialize(c(sent, list(p2 = sent$p, q2 = sent$q)), NULL)))
    expect_identical(got, rep(TRUE, 4))
  }
  views <- list(p2 = s$p, q2 = s$q)
  # Where it matters: another process given the list.
  expect_identical(in_other_process(function(s, check) check(s),
                                    list(s = c(s, views), check = check)),
                   rep(TRUE, 4))
  # A list without any keeps travelling by name, whatever holds it (R >= 4.3:
  # R 4.2's lists are ordinary lists).
  if (has_list_views()) {
    plain <- share(list(v = as.numeric(1:10), w = list(1:3)))
    expect_identical(shared_name(unserialize(serialize(list(plain), NULL))[[1]]), shared_name(plain))
  }
})

test_that("a shared fitted model keeps one formula environment, as the model had", {
  fit <- local({
    d <- data.frame(y = c(1, 3, 2, 5, 4, 6), x = 1:6)
    lm(y ~ x, data = d)
  })
  check_fit <- function(fit) {
    env <- environment(fit$terms)
    same <- c(identical(env, environment(attr(fit$model, "terms"))),
              identical(env, environment(formula(fit))))
    assign("marker", 1, envir = environment(attr(fit$model, "terms")))
    c(same, exists("marker", envir = env, inherits = FALSE),
      isTRUE(all.equal(unname(coef(fit)), unname(coef(lm(y ~ x, data = fit$model))))))
  }
  environment(check_fit) <- globalenv()
  expect_identical(check_fit(fit), rep(TRUE, 4))
  s <- share(fit)
  expect_identical(check_fit(s), rep(TRUE, 4))
  # In another process, mapping the region by name.
  kept <- share(fit)
  expect_identical(in_other_process(function(name, check) check(map_shared(name)),
                                    list(name = shared_name(kept), check = check_fit)),
                   rep(TRUE, 4))
  # In another process given the shared model.
  expect_identical(in_other_process(function(s, check) check(s),
                                    list(s = share(fit), check = check_fit)),
                   rep(TRUE, 4))
})

# Since format version 4 every object stored serialized is in one stream:
# an environment that two of them hold (a closure's, a formula's, one held
# itself) comes back as one environment, as from serialize() of the list.
test_that("objects stored serialized keep the environments they share", {
  check_shared_environment <- function(s) {
    env <- s$e
    same <- c(identical(environment(s$f), env), identical(environment(s$g$fo), env),
              is.null(s$v) || identical(attr(s$v, "env"), env))
    assign("y", 5, envir = environment(s$f))
    c(same, s$f() == 5, get("y", envir = environment(s$g$fo)) == 5)
  }
  environment(check_shared_environment) <- globalenv()
  e <- new.env()
  e$y <- 1
  x <- list(e = e, f = local(function() y, e), g = list(fo = local(a ~ b, e)),
            v = structure(as.numeric(1:10), env = e))
  expect_identical(check_shared_environment(x), rep(TRUE, 5))
  x$e$y <- 1
  s <- share(x)
  expect_identical(check_shared_environment(s), rep(TRUE, 5))
  # Another process maps the region. (Of the whole of `x`, shared_name() is
  # NULL on R >= 4.3, a limit found here and not fixed: the parts that make it
  # so are left out.)
  # (On R 4.2 only a list that holds a view has a name: a vector too.)
  kept <- share(if (has_list_views()) x[c("e", "f", "g")] else c(x[c("e", "f", "g")], list(n = 1.5)))
  expect_false(is.null(shared_name(kept)))
  expect_identical(in_other_process(function(name, check) check(map_shared(name)),
                                    list(name = shared_name(kept), check = check_shared_environment)),
                   rep(TRUE, 5))
  # A glm holds its formula twice: as given and as its terms.
  fit <- local({
    d <- data.frame(y = c(0, 0, 1, 0, 1, 1), x = 1:6)
    glm(y ~ x, family = binomial, data = d)
  })
  sf <- share(fit)
  expect_identical(environment(sf$formula), environment(sf$terms))
  expect_identical(environment(sf$formula), environment(attr(sf$model, "terms")))
  expect_equal(coef(sf), coef(fit))
})

# A namespace no process can load, as serialize() writes one: what a closure
# of a package holds, seen from a process that lacks the package.
unloadable_namespace <- function(name) {
  ns <- new.env()
  ns$.__NAMESPACE__. <- new.env()
  ns$.__NAMESPACE__.$spec <- c(name = name, version = "0.1")
  ns
}

test_that("a shared list whose stream cannot be unserialized here still travels, by name (R >= 4.3)", {
  skip_without_list_views()
  f <- function(x) x + 1
  environment(f) <- unloadable_namespace("shmrNoSuchPackage")
  s <- share(list(f = f, v = 1:10))
  name <- shared_name(s)
  # Another process maps the list and sends it on without reading the
  # closure. Unserialized there, the closure would have .GlobalEnv in place
  # of its namespace (R's choice for a namespace it cannot load), and under
  # options(warn = 2) with R's report of missing namespaces on, an error:
  # by name, the list reaches a receiver that may have the package.
  relay <- function(name, strict) {
    if (strict) {
      Sys.setenv(`_R_NO_REPORT_MISSING_NAMESPACES_` = "false")
      options(warn = 2)
    }
    m <- map_shared(name)
    v <- m$v
    bytes <- serialize(m, NULL)
    # Once the closure is read here, what was read travels: by value.
    later <- if (!strict) {
      read <- map_shared(name)
      by_name_first <- identical(shared_name(unserialize(serialize(read, NULL))), name)
      own <- identical(environment(read$f), globalenv())
      c(by_name_first, own, is.null(shared_name(unserialize(serialize(read, NULL)))))
    }
    list(m = m, bytes = bytes, variable = Sys.getenv("_R_NO_REPORT_MISSING_NAMESPACES_", unset = NA),
         later = later)
  }
  for (strict in c(FALSE, TRUE)) {
    got <- in_other_process(relay, list(name = name, strict = strict))
    expect_identical(shared_name(got$m), name)
    expect_identical(shared_name(unserialize(got$bytes)), name)
    expect_identical(got$variable, if (strict) "false" else NA_character_)
    if (!strict) expect_identical(got$later, rep(TRUE, 3))
  }
  # Sent by value, nothing read yet: a list twice in one stream keeps one
  # environment, so a list goes by name only when its stream cannot be read.
  e <- new.env()
  s2 <- share(list(e = e, v = 1:10))
  twice <- unserialize(serialize(list(s2, s2), NULL))
  expect_identical(twice[[1]]$e, twice[[2]]$e)
})

# A package whose namespace warns as it loads (a harmless .onLoad warning,
# such as "built under a newer R"), installed into a library of its own.
install_warning_package <- function(name) {
  install_test_package(name, "Warns As It Loads", "add_one", c(
    "add_one <- function(x) x + 1",
    ".onLoad <- function(libname, pkgname) warning('harmless load warning', call. = FALSE)"))
}

test_that("a namespace that warns as it loads does not keep a list's stream from travelling by value (R >= 4.3)", {
  skip_without_list_views()
  skip_on_cran()
  lib <- install_warning_package("shmrWarnOnLoad")
  on.exit(unlink(lib, recursive = TRUE), add = TRUE)
  on.exit(unloadNamespace("shmrWarnOnLoad"), add = TRUE, after = FALSE)
  f <- local({
    withr::local_libpaths(lib, action = "prefix")
    suppressWarnings(getExportedValue("shmrWarnOnLoad", "add_one"))
  })
  s <- share(list(f = f, v = 1:10))
  relay <- function(name, lib) {
    .libPaths(c(lib, .libPaths()))
    m <- map_shared(name)
    warned <- character()
    bytes <- withCallingHandlers(serialize(m, NULL), warning = function(w) {
      warned <<- c(warned, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
    list(bytes = bytes, warned = warned, loaded = "shmrWarnOnLoad" %in% loadedNamespaces())
  }
  got <- in_other_process(relay, list(name = shared_name(s), lib = lib))
  # The warning reaches the user, as from unserialize(); the list travels
  # by value with its closure whole.
  expect_identical(got$warned, "harmless load warning")
  expect_true(got$loaded)
  back <- unserialize(got$bytes)
  expect_null(shared_name(back))
  expect_identical(environmentName(environment(back$f)), "shmrWarnOnLoad")
  expect_identical(back$f(1), 2)
})

test_that("a list whose stream needs a namespace not loaded yet loads it and travels by value (R >= 4.3)", {
  skip_without_list_views()
  f <- function(x) x + 1
  environment(f) <- asNamespace("tools")
  s <- share(list(f = f, v = 1:10))
  relay <- function(name) {
    before <- "tools" %in% loadedNamespaces()
    m <- map_shared(name)
    bytes <- serialize(m, NULL)
    list(before = before, after = "tools" %in% loadedNamespaces(), bytes = bytes,
         variable = Sys.getenv("_R_NO_REPORT_MISSING_NAMESPACES_", unset = NA))
  }
  got <- in_other_process(relay, list(name = shared_name(s)))
  expect_false(got$before)
  # The stream's namespace was loaded to read the stream, as R would have
  # when reading the closure: the list travels by value, its closure whole.
  expect_true(got$after)
  back <- unserialize(got$bytes)
  expect_null(shared_name(back))
  expect_identical(environment(back$f), asNamespace("tools"))
  expect_identical(back$f(1), 2)
  # Nothing set R's report of missing namespaces to find that out.
  expect_identical(got$variable, NA_character_)
})
