# Backings ("shm", "mmap", "auto"), named and persistent shares.

read_in_other_process <- function(name) {
  in_other_process(function(name) {
    x <- map_shared(name)
    list(values = fetch(x), backing = shared_info(x)$backing)
  }, list(name = name))
}

test_that("each backing is shared with a real second process", {
  for (backing in c("shm", "mmap")) {
    x <- share(seq_len(1e5) / 3, backing = backing)
    info <- shared_info(x)
    expect_identical(info$backing, backing, info = backing)
    got <- read_in_other_process(shared_name(x))
    expect_identical(got$values, seq_len(1e5) / 3, info = backing)
    expect_identical(got$backing, backing, info = backing)
  }
})

test_that("file-backed regions live in a private directory with private files", {
  x <- share(rnorm(100), backing = "mmap")
  info <- shared_info(x)
  expect_false(startsWith(info$path, shmr:::shm_directory()))
  expect_identical(format(file.info(dirname(info$path))$mode), "700")
  expect_identical(format(file.info(info$path)$mode), "600")
  # The name in /dev/shm is a small locator, also private.
  locator <- region_file(info$name)
  expect_true(file.exists(locator))
  expect_identical(format(file.info(locator)$mode), "600")
  expect_lt(file.size(locator), 4200)
  close(x)
  expect_false(file.exists(info$path))
  expect_false(file.exists(locator))
})

test_that("mmap regions go where `path` says", {
  dir <- tempfile("shmr-path")
  dir.create(dir)
  x <- share(1:10 + 0, backing = "mmap", path = dir)
  expect_identical(dirname(shared_info(x)$path), normalizePath(dir))
  expect_error(share(1, backing = "mmap", path = file.path(dir, "missing")), "existing directory")
})

test_that("auto falls back to a file mapping when /dev/shm is too small, and says so once", {
  old <- options(shmr.shm_capacity = 4096)
  on.exit(options(old))
  shmr:::reset_fallback_message()
  expect_message(x <- share(rnorm(1e4)), "too little room", class = "shmr_backing_message")
  expect_identical(shared_info(x)$backing, "mmap")
  expect_silent(y <- share(rnorm(1e4)))
  expect_identical(shared_info(y)$backing, "mmap")
  small <- share(1:3 + 0L, backing = "auto")
  expect_identical(shared_info(small)$backing, "mmap")
  options(shmr.shm_capacity = NULL)
  expect_identical(shared_info(share(rnorm(10)))$backing, "shm")
})

test_that("a capacity that is not a number of bytes is an error, not 'no cap'", {
  old <- options(shmr.shm_capacity = "4k")
  on.exit(options(old))
  expect_error(share(rnorm(10)), "options(shmr.shm_capacity) must be a number of bytes >= 0",
               fixed = TRUE)
  options(shmr.shm_capacity = -1)
  expect_error(shared_buffer("double", 10), "not -1", fixed = TRUE)
  options(shmr.shm_capacity = NULL)
  on.exit(Sys.unsetenv("SHMR_SHM_CAPACITY"), add = TRUE)
  Sys.setenv(SHMR_SHM_CAPACITY = "lots")
  expect_error(segment_create(100), "the environment variable SHMR_SHM_CAPACITY", fixed = TRUE)
  Sys.setenv(SHMR_SHM_CAPACITY = "0")
  expect_identical(shared_info(share(rnorm(10)))$backing, "shm")
  # Beyond any file system (Inf included): no cap, as the caller means.
  for (huge in c("Inf", "1e30")) {
    Sys.setenv(SHMR_SHM_CAPACITY = huge)
    expect_identical(shmr:::shm_capacity(), 2^62, label = huge)
    expect_identical(shared_info(share(rnorm(10)))$backing, "shm", label = huge)
  }
})

test_that("auto falls back with a real small /dev/shm; shm then fails clearly", {
  skip_on_cran()
  skip_if_not(small_tmpfs_available(), "cannot mount a private tmpfs here")
  got <- in_small_shm(c(
    "library(shmr)",
    "auto <- share(rnorm(5e5))",
    "forced <- tryCatch(share(rnorm(5e5), backing = 'shm'), error = conditionMessage)",
    "other <- callr::r(function(n) sum(shmr::map_shared(n)), list(shared_name(auto)))",
    "list(backing = shared_info(auto)$backing, forced = forced,",
    "     same = isTRUE(all.equal(other, sum(auto))),",
    "     left = list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE),",
    "     name = shared_name(auto))"
  ))
  expect_identical(got$backing, "mmap")
  expect_match(got$forced, "not enough space .* for a region of [0-9]+ bytes")
  expect_true(got$same)
  # Only the locator of the file-backed region is in the small /dev/shm.
  expect_identical(got$left, got$name)
})

test_that("named shares are opened by name from another process; names are checked", {
  x <- share(c(a = 1, b = 2), name = "test_named_share")
  expect_identical(shared_name(x), "shmr_test_named_share")
  got <- read_in_other_process("test_named_share")
  expect_identical(got$values, c(a = 1, b = 2))
  expect_identical(map_shared("shmr_test_named_share"), x)
  expect_error(share(3, name = "test_named_share"), "already exists")
  for (bad in list("a/b", "../up", "", "x y", strrep("a", 101), "caf\u00e9", NA_character_,
                   c("a", "b"), 1, ".")) {
    expect_error(share(1, name = bad), "region name must be", info = deparse(bad))
  }
  close(x)
  y <- share(4, name = "test_named_share")
  expect_identical(map_shared("test_named_share")[], 4)
})

test_that("a named mmap share reserves its name against shm shares too", {
  x <- share(1:5 + 0, name = "test_named_mmap", backing = "mmap")
  expect_error(share(1, name = "test_named_mmap", backing = "shm"), "already exists")
  expect_identical(read_in_other_process("test_named_mmap")$values, 1:5 + 0)
})

test_that("persistent shares outlive their creator until remove_shared()", {
  for (backing in c("shm", "mmap")) {
    name <- paste0("test_persist_", backing)
    remove_shared(name)
    path <- if (backing == "mmap") tempfile("persist") else NULL
    if (!is.null(path)) dir.create(path)
    pid <- in_other_process(function(name, backing, path) {
      share(as.numeric(1:100), name = name, persist = TRUE, backing = backing, path = path)
      Sys.getpid()
    }, list(name = name, backing = backing, path = path))
    regions <- shared_regions()
    row <- regions[regions$name == paste0("shmr_", name), ]
    expect_identical(nrow(row), 1L, info = backing)
    expect_true(row$persistent, info = backing)
    expect_false(row$creator_alive, info = backing)
    expect_identical(row$creator_pid, pid, info = backing)
    expect_false(paste0("shmr_", name) %in% prune_shared(), info = backing)
    expect_identical(sum(map_shared(name)), 5050, info = backing)
    expect_true(remove_shared(name), info = backing)
    expect_false(remove_shared(name), info = backing)
    expect_null(map_shared(name), info = backing)
    expect_error(map_shared(paste0("shmr_", name)), "no shared region", info = backing)
    expect_false(file.exists(row$path), info = backing)
  }
})

test_that("remove_shared() while a file-backed region is written leaves no data file behind", {
  # A file-backed region's locator takes the name first; the data file is
  # published when written. remove_shared() in between finds only the
  # locator. The data file, published afterwards, used to stay: nothing led
  # to it (no prune would ever find it) and it kept any new region of that
  # name out of the directory ("already exists" with no such region).
  skip_on_cran()
  name <- "test_removed_while_made"
  dir <- tempfile("shmr-removed")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  data_file <- file.path(dir, paste0("shmr_", name))
  worker <- start_worker()
  on.exit(worker$close(), add = TRUE)
  pid <- worker$get_pid()
  worker$call(function(name, dir) {
    x <- runif(2e7)
    made <<- share(x, backing = "mmap", name = name, path = dir)
    identical(made[c(1, 2e7)], x[c(1, 2e7)])
  }, list(name = name, dir = dir))
  # Stop the creator as soon as its locator has the name.
  locator <- region_file(paste0("shmr_", name))
  started <- Sys.time()
  while (!file.exists(locator) && difftime(Sys.time(), started, units = "secs") < 120) {}
  tools::pskill(pid, tools::SIGSTOP)
  on.exit(tools::pskill(pid, tools::SIGCONT), add = TRUE, after = FALSE)
  if (!file.exists(locator) || file.exists(data_file)) {
    tools::pskill(pid, tools::SIGCONT)
    skip("the creator was not stopped between publishing its locator and its data file")
  }
  expect_true(remove_shared(name))
  tools::pskill(pid, tools::SIGCONT)
  result <- NULL
  deadline <- Sys.time() + 120
  while (is.null(result) && Sys.time() < deadline) {
    worker$poll_process(1000)
    result <- worker$read()
  }
  expect_false(is.null(result))
  expect_null(result$error)
  expect_true(result$result) # the creator reads its region
  expect_false(file.exists(data_file))
  expect_false(file.exists(locator))
  expect_null(map_shared(name))
  # The name is free for a new region in the same directory.
  y <- share(c(4, 5), backing = "mmap", name = name, path = dir)
  expect_identical(in_other_process(function(name) map_shared(name)[], list(name = name)), c(4, 5))
  close(y)
  expect_true(worker$run(function() sum(made[1:3]) > 0))
})

test_that("removing a name and re-creating it is safe from the old owner", {
  x <- share(1:3 + 0, name = "test_recreated")
  remove_shared("test_recreated")
  pid <- in_other_process(function() {
    share(c(9, 9), name = "test_recreated", persist = TRUE)
    Sys.getpid()
  })
  close(x) # the old owner must not remove the new region
  expect_identical(map_shared("test_recreated")[], c(9, 9))
  remove_shared("test_recreated")
})
