# How a process maps regions (src/mapping.h): mappings are found by the
# file's identity, a page written for one object never shows in another,
# their number stays bounded, their bookkeeping does not grow with the
# number of live shares, and a region larger than the machine's memory maps.

test_that("a page written by a dropped object never shows in a later one", {
  # A list element written in place, then dropped: its mapping lives on
  # (the list holds it) with the written page.
  s <- share(list(a = as.numeric(1:100), b = as.numeric(101:200)))
  name <- shared_name(s)
  bytes <- serialize(s$a, NULL)
  s$a[1] <- 99
  expect_identical(s$a[1], 99)
  s$a <- NULL
  invisible(gc())
  expect_identical(unserialize(bytes), as.numeric(1:100))
  expect_identical(map_shared(name)$a, as.numeric(1:100))

  # A duplicate written and dropped.
  x <- share(c(7, 8, 9))
  stream <- serialize(x, NULL)
  y <- x
  y[1] <- 0
  rm(y)
  invisible(gc())
  expect_identical(unserialize(stream), c(7, 8, 9))
  expect_identical(x[], c(7, 8, 9))
  close(x)
})

test_that("a region removed and created again under its name is a new region to a consumer", {
  skip_on_os(c("windows", "mac"))
  name <- paste0("recreated_", Sys.getpid())
  old <- share(list(a = as.numeric(1:100), b = as.numeric(1:100)), name = name)
  consumer <- start_worker()
  on.exit(consumer$close(), add = TRUE)
  # The consumer keeps the old region mapped through element a only.
  consumer$run(function(name) {
    held <<- map_shared(name)$a
    invisible(gc())
    NULL
  }, list(name = name))
  close(old)
  new <- share(list(a = as.numeric(101:200), b = as.numeric(201:300)), name = name)
  on.exit(close(new), add = TRUE)
  # Values are fetched there: a shared object would travel back by name.
  got <- consumer$run(function(name, b, whole) {
    list(b = fetch(unserialize(b)), whole = fetch(unserialize(whole)),
         mapped = fetch(map_shared(name)$b), held = held[1:3])
  }, list(name = name, b = serialize(new$b, NULL), whole = serialize(new, NULL)))
  expect_identical(got$b, as.numeric(201:300))
  expect_identical(got$whole$a, as.numeric(101:200))
  expect_identical(got$mapped, as.numeric(201:300))
  # The old object still reads the old region.
  expect_identical(got$held, c(1, 2, 3))
})

test_that("duplicates written in a loop keep the number of mappings bounded", {
  skip_on_os(c("windows", "mac"))
  got <- in_other_process(function() {
    region_maps <- function(name) sum(grepl(name, readLines("/proc/self/maps"), fixed = TRUE))
    x <- share(as.numeric(1:1e4))
    name <- shared_name(x)
    # Past 4,096 live mappings the next map first runs a collection
    # (src/mapping.cpp), so the count never gets far beyond that.
    peak <- 0
    for (i in 1:10000) {
      y <- x
      y[1] <- 0
      if (i %% 500 == 0) peak <- max(peak, region_maps(name))
    }
    # Each written copy is still its own object.
    copies <- lapply(1:3, function(i) {
      y <- x
      y[i] <- -i
      y
    })
    list(peak = peak, y = y[1:2], x = x[1:3], copies = lapply(copies, function(v) v[1:3]))
  })
  expect_lt(got$peak, 5000)
  expect_identical(got$y, c(0, 2))
  expect_identical(got$x, c(1, 2, 3))
  expect_identical(got$copies, list(c(-1, 2, 3), c(1, -2, 3), c(1, 2, -3)))
})

test_that("mapping bookkeeping does not grow with the number of live shares", {
  stats <- shmr:::mapping_stats
  work_per_use <- function(live) {
    kept <- lapply(seq_len(live), function(i) share(as.numeric(1:20) + i))
    names <- vapply(kept[1:100], shared_name, "")
    streams <- lapply(kept[1:100], serialize, connection = NULL)
    before <- stats()[["examined"]]
    for (i in 1:100) {
      y <- map_shared(names[i])
      z <- unserialize(streams[[i]])
    }
    work <- (stats()[["examined"]] - before) / 200
    groups <- stats()[["groups"]]
    rm(kept, y, z)
    invisible(gc())
    c(work = work, groups = groups)
  }
  invisible(gc())
  baseline <- stats()[["groups"]]
  small <- work_per_use(100)
  large <- work_per_use(3000)
  expect_lte(large[["work"]], small[["work"]] + 1)
  expect_lte(large[["work"]], 20)
  # The registry holds the files of live shares, and lets go of them.
  expect_gte(large[["groups"]], baseline + 3000)
  expect_lte(stats()[["groups"]], baseline + 10)
})

test_that("a mapping dropped and mapped again in a consumer is reused, until its region goes", {
  skip_on_os(c("windows", "mac"))
  x <- share(as.numeric(1:1e5))
  name <- shared_name(x)
  consumer <- start_worker()
  on.exit(consumer$close(), add = TRUE)
  first <- consumer$run(function(name) {
    region_maps <- function(name) sum(grepl(name, readLines("/proc/self/maps"), fixed = TRUE))
    y <- map_shared(name)
    s1 <- sum(y)
    rm(y)
    invisible(gc())
    idle <- shmr:::mapping_stats()[["idle"]]
    y <- map_shared(name)
    list(sum = s1, again = sum(y), idle = idle, maps = region_maps(name))
  }, list(name = name))
  expect_identical(first$sum, sum(as.numeric(1:1e5)))
  expect_identical(first$again, first$sum)
  expect_identical(first$idle, 1)
  expect_identical(first$maps, 1L)
  consumer$run(function() invisible(gc()))
  close(x)
  other <- share(1:3 + 0)
  on.exit(close(other), add = TRUE)
  # The consumer's next uses of shmr find the region gone and let go.
  left <- consumer$run(function(name, other) {
    region_maps <- function(name) sum(grepl(name, readLines("/proc/self/maps"), fixed = TRUE))
    for (i in 1:8) z <- map_shared(other)
    invisible(gc())
    region_maps(name)
  }, list(name = name, other = shared_name(other)))
  expect_identical(left, 0L)
})

test_that("a region larger than memory and swap maps in another process", {
  skip_on_os(c("windows", "mac"))
  overcommit <- suppressWarnings(readLines("/proc/sys/vm/overcommit_memory"))
  # Under strict overcommit the kernel charges private mappings in full.
  skip_if(identical(overcommit, "2"), "strict overcommit (vm.overcommit_memory = 2)")
  meminfo <- readLines("/proc/meminfo")
  kb <- function(key) as.numeric(sub("^[^:]+:\\s*([0-9]+) kB.*$", "\\1", grep(paste0("^", key, ":"), meminfo, value = TRUE)))
  big <- ceiling((kb("MemTotal") + kb("SwapTotal")) * 1024 * 1.25 / 4096) * 4096
  dir <- tempfile("shm")
  dir.create(dir, mode = "0700")
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  # A real region of a raw vector, its node and header grown to `big` bytes,
  # written sparsely: only its first bytes exist on disk.
  x <- share(as.raw(rep(7, 64)), backing = "shm")
  bytes <- readBin(region_file(shared_name(x)), "raw", file.size(region_file(shared_name(x))))
  close(x)
  node <- find_node(bytes, KIND[["raw"]])
  at <- node_at(bytes, node)
  data_offset <- u64(bytes, at + FIELD[["data_offset"]])
  bytes <- put_u64(bytes, at + FIELD[["length"]], big - data_offset)
  bytes <- put_u64(bytes, at + FIELD[["data_size"]], big - data_offset)
  bytes <- put_u64(bytes, HEADER[["total_size"]], big)
  path <- file.path(dir, "shmr_sparse_big")
  con <- file(path, "wb")
  writeBin(bytes[seq_len(data_offset + 64)], con)
  seek(con, big - 1, rw = "write")
  writeBin(as.raw(0), con)
  close(con)
  Sys.chmod(path, "0600")
  expect_identical(file.size(path), big)
  got <- in_other_process(function(dir, name) {
    Sys.setenv(SHMR_SHM_DIR = dir)
    y <- map_shared(name)
    list(length = length(y), first = as.integer(y[1:2]), last = as.integer(y[length(y)]))
  }, list(dir = dir, name = "shmr_sparse_big"))
  expect_identical(got$length, big - data_offset)
  expect_identical(got$first, c(7L, 7L))
  expect_identical(got$last, 0L)
})

test_that("an error while a buffer is made leaves no region behind", {
  v <- share(5)
  close(v)
  own <- function() sum(shared_regions()$creator_pid == Sys.getpid(), na.rm = TRUE)
  before <- own()
  # Reading the closed object's value raises an R error inside the engine.
  expect_error(shared_buffer("double", 4, init = v), "was closed")
  expect_identical(own(), before)
})

test_that("attribute names as long as R allows are shared", {
  long <- strrep("n", 10000)
  x <- as.numeric(1:10)
  attr(x, long) <- 1:3
  attr(x, "short") <- "s"
  s <- share(x)
  expect_identical(attributes(s), attributes(x))
  expect_identical(fetch(map_shared(shared_name(s))), x)
  close(s)
})

test_that("map_shared() opens a region with one open, one fstat, one mmap and no /proc read", {
  skip_on_os(c("windows", "mac"))
  skip_on_cran()
  strace <- Sys.which("strace")
  skip_if(strace == "", "strace is not installed")
  x <- share(as.numeric(1:1e5))
  on.exit(close(x), add = TRUE)
  script <- tempfile(fileext = ".R")
  trace <- tempfile(fileext = ".txt")
  on.exit(unlink(c(script, trace)), add = TRUE)
  writeLines(c(
    "library(shmr)",
    # Loading and a first share set up what every later call finds ready.
    "z <- share(1:3 + 0); close(z); invisible(gc())",
    "cat('MARK-BEGIN\\n', file = stderr())",
    sprintf("y <- map_shared('%s')", shared_name(x)),
    "cat('MARK-END\\n', file = stderr())",
    "stopifnot(identical(y[1:3], c(1, 2, 3)))"
  ), script)
  status <- system2(strace, c("-f", "-e", "trace=%file,%desc,%memory", "-o", shQuote(trace),
                              shQuote(file.path(R.home("bin"), "Rscript")), shQuote(script)),
                    stdout = FALSE, stderr = FALSE)
  lines <- if (file.exists(trace)) readLines(trace) else character()
  begin <- grep("MARK-BEGIN", lines, fixed = TRUE)
  end <- grep("MARK-END", lines, fixed = TRUE)
  skip_if(length(begin) != 1 || length(end) != 1, "strace cannot trace here")
  expect_identical(status, 0L)
  calls <- lines[seq(begin + 1, end - 1)]
  opens <- grep("open(at)?\\(", calls, value = TRUE)
  expect_length(opens, 1)
  expect_match(opens, shared_name(x), fixed = TRUE)
  expect_length(grep("fstat|statx", calls), 1)
  # File mappings only: R's own allocations may map anonymous memory.
  file_maps <- grep("mmap\\(", calls, value = TRUE)
  expect_length(grep("MAP_ANONYMOUS", file_maps, invert = TRUE), 1)
  expect_length(grep("/proc", calls, fixed = TRUE), 0)
})

test_that("past half the mappings the kernel allows, more objects of one vector copy their data", {
  allowed <- as.numeric(readLines("/proc/sys/vm/max_map_count"))
  skip_if(allowed > 70000, "the kernel allows too many mappings to reach half of them quickly")
  s <- share(runif(1000))
  stream <- serialize(s, NULL)
  n <- ceiling(allowed / 2) + 2000
  got <- lapply(seq_len(n), function(i) unserialize(stream))
  views <- sum(vapply(got, is_shared, TRUE))
  expect_lt(views, n)                   # the last ones are copies
  expect_gt(views, allowed / 2 - 1000)  # the first ones views
  expect_true(all(vapply(got[c(1, n)], function(v) identical(v[], s[]), TRUE)))
  rm(got)
  invisible(gc())
  expect_lt(shmr:::mapping_stats()[["live"]], 1000)
})

test_that("past half the mappings the kernel allows, more map_shared() of one region copy its data", {
  allowed <- as.numeric(readLines("/proc/sys/vm/max_map_count"))
  skip_if(allowed > 70000, "the kernel allows too many mappings to reach half of them quickly")
  s <- share(runif(1000))
  df <- share(data.frame(a = 1:3, b = c("x", "y", "z"), stringsAsFactors = FALSE))
  df_view <- map_shared(shared_name(df))
  w <- share(numeric(3), readonly = FALSE)
  w_view <- map_shared(shared_name(w))
  # Before, each call mapped the region again (kept results keep their
  # mappings), up to the kernel's limit, past which R itself could not
  # allocate.
  n <- ceiling(allowed / 2) + 2000
  got <- lapply(seq_len(n), function(i) map_shared(shared_name(s)))
  views <- sum(vapply(got, is_shared, TRUE))
  expect_lt(views, n)                   # the last ones are copies
  expect_gt(views, allowed / 2 - 1000)  # the first ones views
  expect_true(all(vapply(got[c(1, n)], function(v) identical(v[], s[]), TRUE)))
  expect_lt(shmr:::mapping_stats()[["live"]], allowed / 2 + 100)
  # A copy reads no mapping: closing it closes nothing another object reads.
  close(got[[n]])
  expect_identical(got[[1]][], s[])
  # An object with attributes and strings is copied whole.
  df_copy <- map_shared(shared_name(df))
  expect_false(is_shared(df_copy))
  expect_false(any(vapply(df_copy, is_shared, TRUE)))
  expect_identical(df_copy, data.frame(a = 1:3, b = c("x", "y", "z"), stringsAsFactors = FALSE))
  # A region written in place is not copied: a copy would keep its writes.
  w_again <- map_shared(shared_name(w))
  expect_true(is_shared(w_again))
  w_again[2] <- 7
  expect_identical(w[], c(0, 7, 0))
  rm(got)
  invisible(gc())
  expect_lt(shmr:::mapping_stats()[["live"]], 1000)
  expect_true(is_shared(map_shared(shared_name(s))))
})

test_that("shares of many regions stop short of the kernel's limit on mappings, leaving R room", {
  allowed <- as.numeric(readLines("/proc/sys/vm/max_map_count"))
  skip_if(allowed > 70000, "the kernel allows too many mappings to reach them quickly")
  skip_if_memory_is_sanitized()
  got <- in_other_process(function(allowed) {
    attempt <- function(expr) tryCatch({ force(expr); "ok" }, error = conditionMessage)
    xs <- vector("list", allowed)
    refused <- NULL
    for (i in seq_along(xs)) {
      refused <- tryCatch({ xs[[i]] <- share(c(i, 2, 3)); NULL }, error = conditionMessage)
      if (!is.null(refused)) break
    }
    # Before, shares went on to the kernel's limit itself, past which R could
    # not allocate a large vector, read a file or start a process until
    # objects were dropped.
    at_limit <- list(vector = attempt(numeric(1e7)), fetch = attempt(fetch(xs[[1]])),
                     regions = attempt(shared_regions()), process = attempt(system("true", intern = TRUE)),
                     map = attempt(map_shared(shared_name(xs[[2]]))),
                     earlier = identical(xs[[i - 1]][], c(i - 1, 2, 3)))
    xs <- NULL
    invisible(gc())
    list(shares = i - 1, refused = refused, at_limit = at_limit, after = sum(share(c(1, 2, 3))))
  }, list(allowed = allowed))
  expect_match(got$refused, "vm.max_map_count", fixed = TRUE)
  expect_lt(got$shares, allowed - 1000)
  expect_identical(got$at_limit, list(vector = "ok", fetch = "ok", regions = "ok", process = "ok",
                                      map = "ok", earlier = TRUE))
  expect_identical(got$after, 6)
})
