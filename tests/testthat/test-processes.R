# Sharing between real, separate R processes.

test_that("another process maps a region by name and sees the same data", {
  x <- share(c(3.25, 1, 2))
  got <- in_other_process(function(name) {
    y <- map_shared(name)
    list(values = y[], shared = is_shared(y), name = shared_name(y), pid = Sys.getpid())
  }, list(name = shared_name(x)))
  expect_identical(got$values, c(3.25, 1, 2))
  expect_true(got$shared)
  expect_identical(got$name, shared_name(x))
  expect_false(got$pid == Sys.getpid())
})

test_that("a shared object sent to another process arrives as its name", {
  x <- share(seq_len(1e6) / 7)
  df <- share(data.frame(a = 1:1e5, b = rnorm(1e5)))
  got <- in_other_process(function(x, df) {
    list(
      x_name = shared_name(x), x_sum = sum(x), df_name = shared_name(df),
      df_col = shared_name(df$b), df_mean = mean(df$b)
    )
  }, list(x = x, df = df))
  expect_identical(got$x_name, shared_name(x))
  expect_equal(got$x_sum, sum(seq_len(1e6) / 7))
  expect_identical(got$df_col, shared_name(df$b))
  expect_equal(got$df_mean, mean(df$b))
})

test_that("serialized shared objects are small whatever their size", {
  small <- share(rnorm(10))
  big <- share(rnorm(2e6))
  expect_lt(length(serialize(big, NULL)), 200)
  expect_equal(length(serialize(big, NULL)), length(serialize(small, NULL)))
  expect_lt(length(serialize(share(as.character(1:1e5)), NULL)), 200)
  expect_lt(length(serialize(share(1:1e6), NULL)), 200)
  # A data frame adds a bounded amount per column, never per row.
  df_small <- share(data.frame(a = 1:10, b = rnorm(10), c = letters[1:10]))
  df_big <- share(data.frame(a = 1:1e5, b = rnorm(1e5), c = rep(letters, length.out = 1e5)))
  expect_lt(length(serialize(df_big, NULL)), 200 + 3 * 150)
  # Sub-objects too.
  expect_lt(length(serialize(df_big$b, NULL)), 200)
})

test_that("unserialize in another process maps the same region, with no copy", {
  x <- share(rnorm(5e6))
  bytes <- serialize(x, NULL)
  got <- in_other_process(function(bytes) {
    before <- shmr:::process_memory()[["anonymous"]]
    y <- unserialize(bytes)
    s <- sum(y)
    after <- shmr:::process_memory()[["anonymous"]]
    list(name = shared_name(y), sum = s, growth = after - before)
  }, list(bytes = bytes))
  expect_identical(got$name, shared_name(x))
  expect_equal(got$sum, sum(x))
  expect_lt(got$growth, 0.05 * 8 * 5e6)
})

test_that("parallel PSOCK and fork workers receive names, not data", {
  skip_on_os("windows")
  x <- share(rnorm(4e6))
  cl <- parallel::makePSOCKcluster(1)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  parallel::clusterEvalQ(cl, library(shmr))
  psock <- parallel::clusterCall(cl, function(x) {
    list(name = shared_name(x), sum = sum(x))
  }, x)[[1]]
  expect_identical(psock$name, shared_name(x))
  expect_equal(psock$sum, sum(x))

  forked <- parallel::mclapply(1:2, function(i) shared_name(x), mc.cores = 2)
  expect_identical(unlist(forked), rep(shared_name(x), 2))
  # Fork children exit without removing the parent's region.
  expect_true(region_exists(shared_name(x)))
  expect_equal(sum(x), sum(x[]))
})

test_that("mirai daemons receive names, not data", {
  skip_if_not_installed("mirai")
  x <- share(rnorm(1e6))
  mirai::daemons(1)
  on.exit(mirai::daemons(0), add = TRUE)
  m <- mirai::mirai({
    library(shmr)
    list(name = shared_name(x), sum = sum(x))
  }, x = x)
  got <- mirai::call_mirai(m)$data
  expect_identical(got$name, shared_name(x))
  expect_equal(got$sum, sum(x))
})

test_that("the region is freed when the creator's objects are collected, and mappers keep reading", {
  worker <- start_worker()
  on.exit(worker$close(), add = TRUE)
  x <- share(as.numeric(1:1000))
  name <- shared_name(x)
  part <- x[1:3]
  worker$run(function(name) {
    held <<- map_shared(name)
    NULL
  }, list(name = name))
  rm(x)
  invisible(gc())
  expect_false(region_exists(name))
  expect_identical(worker$run(function() sum(held)), sum(as.numeric(1:1000)))
  expect_error(map_shared(name), "no shared region")
})

test_that("a write that duplicates the creator's object keeps the region alive", {
  x <- share(as.numeric(1:100))
  name <- shared_name(x)
  y <- x
  y[1] <- 0
  rm(x)
  invisible(gc())
  expect_true(region_exists(name))
  # y holds its own write, which the region's name would not give back.
  expect_null(shared_name(y))
  expect_identical(sum(y), 5049)
  expect_identical(in_other_process(function(n) sum(map_shared(n)), list(n = name)), 5050)
  rm(y)
  invisible(gc())
  expect_false(region_exists(name))
})

test_that("a sub-object extracted from a shared list keeps the region alive", {
  l <- share(list(a = rnorm(100), b = as.numeric(1:10)))
  name <- shared_name(l)
  b <- l$b
  rm(l)
  invisible(gc())
  expect_true(region_exists(name))
  expect_identical(b, as.numeric(1:10))
  rm(b)
  invisible(gc())
  expect_false(region_exists(name))
})

test_that("regions are removed when the creator exits cleanly", {
  name <- in_other_process(function() {
    x <- share(rnorm(100))
    keep <<- x
    shared_name(x)
  })
  expect_false(region_exists(name))
})

test_that("prune_shared() removes regions of a creator killed with SIGKILL, never live ones", {
  skip_without_callr()
  mine <- share(rnorm(10))
  proc <- callr::r_bg(function() {
    library(shmr)
    x <- share(rnorm(1000))
    cat(shared_name(x), "\n", sep = "", file = Sys.getenv("SHMR_TEST_NAME_FILE"))
    Sys.sleep(60)
  }, env = c(callr::rcmd_safe_env(), SHMR_TEST_NAME_FILE = name_file <- tempfile()))
  on.exit(proc$kill(), add = TRUE)
  deadline <- Sys.time() + 30
  while (!file.exists(name_file) || length(readLines(name_file, warn = FALSE)) == 0) {
    if (Sys.time() > deadline) stop("worker did not share in time")
    Sys.sleep(0.05)
  }
  name <- readLines(name_file)
  expect_true(region_exists(name))
  info <- shared_regions()
  expect_true(info$creator_alive[info$name == name])
  expect_false(name %in% prune_shared())
  expect_true(region_exists(name))

  tools::pskill(proc$get_pid(), tools::SIGKILL)
  proc$wait(10000)  # milliseconds
  expect_true(region_exists(name))
  expect_false(shared_regions()$creator_alive[shared_regions()$name == name])
  removed <- prune_shared()
  expect_true(name %in% removed)
  expect_false(region_exists(name))
  expect_true(region_exists(shared_name(mine)))
})
