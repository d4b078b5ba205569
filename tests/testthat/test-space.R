# Out of space: real small tmpfs file systems, mounted in a private mount
# namespace with unshare (root, or user namespaces), fill up. shm gives a
# clear R error naming the size, "auto" falls back to a file mapping,
# nothing crashes (the session goes on working), nothing is left behind.
# Where no private tmpfs can be mounted, these tests are skipped.

skip_without_small_tmpfs <- function() {
  skip_on_cran()
  skip_if_not(small_tmpfs_available(), "cannot mount a private tmpfs here")
}

test_that("sharing into a full file system is a clear error and leaves nothing behind", {
  skip_without_small_tmpfs()
  got <- in_small_shm(c(
    "library(shmr)",
    "small <- share(rnorm(1000), backing = 'shm')",
    "res <- tryCatch(share(rnorm(1e6), backing = 'shm'), error = function(e) conditionMessage(e))",
    "left <- list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE)",
    "list(res = res, left = left, small = shared_name(small))"
  ))
  expect_type(got$res, "character")
  expect_match(got$res, "not enough space .* for a region of [0-9]+ bytes")
  # Only the small region that fitted is there; no temporary file remains.
  expect_identical(got$left, got$small)
})

test_that("filling shm region by region: earlier regions stay intact, space comes back", {
  skip_without_small_tmpfs()
  got <- in_small_shm(c(
    "library(shmr)",
    "kept <- list(); error <- NULL",
    "for (i in 1:100) {",
    "  x <- tryCatch(share(as.numeric(seq_len(12000) + i), backing = 'shm'),",
    "                error = function(e) { error <<- conditionMessage(e); NULL })",
    "  if (is.null(x)) break",
    "  kept[[i]] <- x",
    "}",
    "intact <- all(vapply(seq_along(kept), function(i) identical(kept[[i]][], as.numeric(seq_len(12000) + i)), TRUE))",
    "others <- callr::r(function(names) vapply(names, function(n) sum(shmr::map_shared(n)), 1),",
    "                   list(vapply(kept, shared_name, '')))",
    "dir <- Sys.getenv('SHMR_SHM_DIR')",
    "files_full <- list.files(dir, all.files = TRUE, no.. = TRUE)",
    "n_full <- length(kept)",
    "names <- vapply(kept, shared_name, '')",
    "for (x in kept[1:3]) close(x)",
    "again <- tryCatch(shared_name(share(as.numeric(1:12000), backing = 'shm')), error = conditionMessage)",
    "list(error = error, n_full = n_full, intact = intact,",
    "     others = unname(others), expected = vapply(seq_along(kept), function(i) sum(as.numeric(seq_len(12000) + i)), 1),",
    "     files_full = files_full, names = names, again = again)"
  ))
  expect_gt(got$n_full, 3)
  expect_lt(got$n_full, 100)
  expect_match(got$error, "^shmr: not enough space .* for a region of [0-9]+ bytes")
  expect_true(got$intact)
  expect_identical(got$others, got$expected)
  # Complete regions only, no temporary file of the failed attempt.
  expect_setequal(got$files_full, got$names)
  expect_match(got$again, "^shmr_")
})

test_that("auto keeps sharing into file mappings once shm is full", {
  skip_without_small_tmpfs()
  # 2 MB of shm, of which auto leaves 1 MB free as a margin.
  got <- in_small_shm(size = "2m", code = c(
    "library(shmr)",
    "msgs <- 0",
    "kept <- withCallingHandlers(lapply(1:12, function(i) share(as.numeric(seq_len(25000) + i))),",
    "  shmr_backing_message = function(m) { msgs <<- msgs + 1; invokeRestart('muffleMessage') })",
    "backings <- vapply(kept, function(x) shared_info(x)$backing, '')",
    "sums <- callr::r(function(names) vapply(names, function(n) sum(shmr::map_shared(n)), 1),",
    "                 list(vapply(kept, shared_name, '')))",
    "for (x in kept) close(x)",
    "list(backings = backings, msgs = msgs, sums = unname(sums),",
    "     expected = vapply(1:12, function(i) sum(as.numeric(seq_len(25000) + i)), 1),",
    "     left = list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE),",
    "     left_data = list.files(file.path(tempdir(), 'shmr'), all.files = TRUE, no.. = TRUE))"
  ))
  expect_true("shm" %in% got$backings)
  expect_true("mmap" %in% got$backings)
  expect_identical(got$msgs, 1)
  expect_identical(got$sums, got$expected)
  expect_identical(got$left, character())
  expect_identical(got$left_data, character())
})

test_that("a share that finds shm full first removes the regions of killed creators", {
  skip_without_small_tmpfs()
  skip_on_os(c("windows", "mac", "solaris"))
  # 8 MB of shm; a child shares 4.8 MB and is killed with SIGKILL, which no
  # code can see coming: its region stays until something prunes it.
  got <- in_small_shm(size = "8m", code = c(
    "library(shmr)",
    "dir <- Sys.getenv('SHMR_SHM_DIR')",
    "killed_share <- function() {",
    "  flag <- tempfile()",
    "  job <- parallel::mcparallel({",
    "    x <- share(numeric(6e5), backing = 'shm')",
    "    file.create(flag)",
    "    Sys.sleep(60)",
    "  })",
    "  for (i in 1:1200) if (file.exists(flag)) break else Sys.sleep(0.05)",
    "  tools::pskill(job$pid, tools::SIGKILL)",
    "  parallel::mccollect(job, wait = TRUE)",
    "  list.files(dir)",
    "}",
    "left_by_killed <- killed_share()",
    # An explicit shm share: no room until the killed child's region goes.
    "y <- share(numeric(6e5) + 1, backing = 'shm')",
    "after_explicit <- list.files(dir)",
    "y_name <- shared_name(y)",
    "close(y)",
    # The automatic backing: shm rather than a file once it is pruned. A
    # second after the first pruning (at most one a second).
    "left_by_second <- killed_share()",
    "Sys.sleep(1.1)",
    "z <- share(numeric(6e5) + 2)",
    "list(left_by_killed = length(left_by_killed), after_explicit = after_explicit,",
    "     y_name = y_name, left_by_second = length(left_by_second),",
    "     z_backing = shared_info(z)$backing, z_sum = sum(z))"
  ))
  expect_identical(got$left_by_killed, 1L)
  expect_identical(got$after_explicit, got$y_name)
  expect_identical(got$left_by_second, 1L)
  expect_identical(got$z_backing, "shm")
  expect_identical(got$z_sum, 2 * 6e5)
})

test_that("a copy from another host that finds shm full first removes the regions of killed creators", {
  skip_without_small_tmpfs()
  skip_on_os(c("windows", "mac", "solaris"))
  skip_if_not_installed("nanonext")
  # This process is the origin; the process in its own 8 MB tmpfs is another
  # host (its shm directory is another device) and copies the 4 MB region.
  old <- options(shmr.remote = TRUE, shmr.remote_url = "tcp://127.0.0.1:0")
  on.exit({
    options(old)
    shmr:::stop_region_server()
  }, add = TRUE)
  x <- share(as.numeric(seq_len(5e5)))
  stream <- tempfile()
  on.exit(unlink(stream), add = TRUE)
  writeBin(serialize(x, NULL), stream)
  got <- in_small_shm(size = "8m", code = c(
    "library(shmr)",
    "dir <- Sys.getenv('SHMR_SHM_DIR')",
    "flag <- tempfile()",
    "job <- parallel::mcparallel({",
    "  x <- share(numeric(6e5), backing = 'shm')",
    "  file.create(flag)",
    "  Sys.sleep(60)",
    "})",
    "for (i in 1:1200) if (file.exists(flag)) break else Sys.sleep(0.05)",
    "tools::pskill(job$pid, tools::SIGKILL)",
    "parallel::mccollect(job, wait = TRUE)",
    "left_by_killed <- length(list.files(dir))",
    sprintf("y <- unserialize(readBin(%s, 'raw', 1e6))", deparse(stream)),
    "list(left_by_killed = left_by_killed,",
    "     sum = tryCatch(sum(y), error = function(e) conditionMessage(e)),",
    "     copy = isTRUE(shared_regions(shared_name(y))$replica))"
  ))
  expect_identical(got$left_by_killed, 1L)
  expect_identical(got$sum, sum(as.numeric(seq_len(5e5))))
  expect_true(got$copy)
})

test_that("a full data directory is a clear error and leaves no locator or file", {
  skip_without_small_tmpfs()
  got <- in_small_shm(data_size = "1m", code = c(
    "library(shmr)",
    "data <- Sys.getenv('SHMR_TEST_DATA_DIR')",
    "fits <- share(rnorm(1000), backing = 'mmap', path = data)",
    "mmap <- tryCatch(share(rnorm(5e5), backing = 'mmap', path = data), error = conditionMessage)",
    "# shm is full too (1 MB): auto tries shm, then the file backing, and fails clearly.",
    "auto <- tryCatch(share(rnorm(5e5), path = data), error = conditionMessage)",
    "named <- tryCatch(share(rnorm(5e5), name = 'big', backing = 'mmap', path = data), error = conditionMessage)",
    "after <- local({ x <- share(1:10 + 0, backing = 'mmap', path = data); s <- sum(x); close(x); s })",
    "list(mmap = mmap, auto = auto, named = named, after = after, fits = shared_name(fits),",
    "     shm = list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE),",
    "     data = list.files(data, all.files = TRUE, no.. = TRUE),",
    "     big = tryCatch(map_shared('shmr_big'), error = conditionMessage),",
    "     big_bare = map_shared('big'))"
  ))
  expect_match(got$mmap, "^shmr: not enough space in .* for a region of [0-9]+ bytes")
  expect_match(got$auto, "^shmr: not enough space in .* for a region of [0-9]+ bytes")
  expect_match(got$named, "^shmr: not enough space")
  expect_identical(got$after, 55)
  # The region that fitted (and the small one of `after`, released) only:
  # the failed attempts took back their locators and temporary files.
  expect_identical(got$shm, got$fits)
  expect_identical(got$data, got$fits)
  # The name of the failed named share is free again (a bare name with no
  # region is not a shmr name, so NULL; with its prefix, an error).
  expect_match(got$big, "no shared region named 'shmr_big'")
  expect_null(got$big_bare)
})

test_that("segments, buffers and writable shares in a full shm fail clearly or fall back", {
  skip_without_small_tmpfs()
  got <- in_small_shm(c(
    "library(shmr)",
    "attempt <- function(expr) tryCatch({ force(expr); 'ok' }, error = conditionMessage)",
    "segment_shm <- attempt(segment_create(4e6, backing = 'shm'))",
    "segment_auto <- segment_create(4e6)",
    "writable_shm <- attempt(share(numeric(5e5), readonly = FALSE, backing = 'shm'))",
    "# The fallback message is shown once; take it here (suppressMessages()",
    "# around a writable share would hold a second reference to it).",
    "close(suppressMessages(share(numeric(5e5))))",
    "writable_auto <- share(numeric(5e5), readonly = FALSE)",
    "writable_auto[3] <- 7",
    "buffer <- shared_buffer('double', c(1000, 100))",
    "buffer[2, 2] <- 5",
    "list(segment_shm = segment_shm, segment_auto = segment_info(segment_auto)$backing,",
    "     writable_shm = writable_shm, writable_auto = shared_info(writable_auto)$backing,",
    "     write_seen = map_shared(shared_name(writable_auto))[3],",
    "     buffer = shared_info(buffer)$backing, buffer_seen = map_shared(shared_name(buffer))[1002],",
    "     left = sort(list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE)),",
    "     expected_left = sort(c(segment_info(segment_auto)$name, shared_name(writable_auto),",
    "                            shared_name(buffer))))"
  ))
  expect_match(got$segment_shm, "^shmr: not enough space .* for a region of [0-9]+ bytes")
  expect_match(got$writable_shm, "^shmr: not enough space .* for a region of [0-9]+ bytes")
  expect_identical(got$segment_auto, "mmap")
  expect_identical(got$writable_auto, "mmap")
  expect_identical(got$write_seen, 7)
  expect_identical(got$buffer, "mmap")
  expect_identical(got$buffer_seen, 5)
  # Only the three locators of the file-backed regions.
  expect_identical(got$left, got$expected_left)
})

test_that("running out of inodes in shm is a clear error and leaves nothing behind", {
  skip_without_small_tmpfs()
  got <- in_small_shm(size = "64m", options = "nr_inodes=3", code = c(
    "library(shmr)",
    "attempt <- function(expr) tryCatch({ force(expr); 'ok' }, error = conditionMessage)",
    "regions <- list(); i <- 0",
    "repeat {",
    "  x <- tryCatch(share(rnorm(100), backing = 'shm'), error = function(e) NULL)",
    "  if (is.null(x) || length(regions) > 10) break",
    "  regions[[length(regions) + 1]] <- x",
    "}",
    "shm <- attempt(share(rnorm(100), backing = 'shm'))",
    "auto <- attempt(share(rnorm(100)))",
    "list(count = length(regions), shm = shm, auto = auto,",
    "     left = sort(list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE)),",
    "     names = sort(vapply(regions, shared_name, '')),",
    "     readable = all(vapply(regions, function(x) length(x[]) == 100, TRUE)))"
  ))
  expect_gte(got$count, 1)
  expect_lte(got$count, 10)
  # A region takes one inode (its temporary file, renamed when published):
  # the last one refused is refused its temporary file.
  expect_match(got$shm, "^shmr: not enough space in .* for a region")
  # auto falls back to the file backing, whose locator needs an inode too.
  expect_match(got$auto, "^shmr: not enough space")
  expect_identical(got$left, got$names)
  expect_true(got$readable)
})

test_that("a share closed while its data directory is read-only stays findable and is removed later", {
  skip_without_small_tmpfs()
  got <- in_small_shm(data_size = "4m", code = c(
    "library(shmr)",
    "data <- Sys.getenv('SHMR_TEST_DATA_DIR')",
    "x <- share(as.numeric(1:1e5), backing = 'mmap', path = data)",
    "name <- shared_name(x)",
    # The directory turns read-only (a bind mount of itself, remounted):
    # the data file cannot be removed.
    "ro <- system(sprintf('mount --bind %s %s && mount -o remount,bind,ro %s', data, data, data))",
    "warned <- character()",
    "closed <- withCallingHandlers(close(x), warning = function(w) {",
    "  warned <<- c(warned, conditionMessage(w)); invokeRestart('muffleWarning')",
    "})",
    "listed_ro <- name %in% shared_regions()$name",
    "new_ro <- tryCatch(share(1:10 + 0, backing = 'mmap', path = data), error = conditionMessage)",
    "rw <- system(sprintf('mount -o remount,bind,rw %s', data))",
    "removed <- remove_shared(name)",
    "list(ro = ro, rw = rw, closed = closed, warned = warned, path = file.path(data, name), listed_ro = listed_ro, new_ro = new_ro, removed = removed,",
    "     shm = list.files(Sys.getenv('SHMR_SHM_DIR'), all.files = TRUE, no.. = TRUE),",
    "     data = list.files(data, all.files = TRUE, no.. = TRUE))"
  ))
  skip_if(!identical(got$ro, 0L), "cannot remount the data directory read-only here")
  expect_match(got$new_ro, "^shmr: cannot create a region in .*: Read-only file system")
  # The close says the file stays (before, it returned TRUE and nothing more).
  expect_true(got$closed)
  expect_identical(got$warned, sprintf(paste0(
    "closed, but %s (Read-only file system) stays: remove_shared() removes it once the ",
    "directory can be written again"), got$path))
  # Its locator stays while its data file does (before, the locator went
  # and the file was left where nothing could find it), and once the
  # directory is writable again it is removed like any region.
  expect_true(got$listed_ro)
  expect_true(got$removed)
  expect_identical(got$shm, character())
  expect_identical(got$data, character())
})
