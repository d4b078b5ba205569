# Large pool results come back through shared memory. The region a worker
# writes is the caller's from the start: it names the caller as its creator
# (prune_shared() judges it by the caller's life) and, when it falls back to
# a file, that file is in the caller's directory. One the caller never
# adopts is removed at the end of the call or, at the latest, when the
# caller exits.

# Runs a map whose element 2 result (a large one handed off, or a shared
# object FUN makes) reaches shared memory while element 1's warning holds
# the caller: the handler waits until `written()` lists it, lets the reply
# arrive for `settle` seconds and stops the call, which never reads it.
stop_with_reply_in_flight <- function(pool, shared, written, settle = 0) {
  seen <- character()
  stopped <- tryCatch(withCallingHandlers(
    pool_lapply(1:2, function(i, shared) {
      if (i == 1) {
        warning("first")
        return(0)
      }
      Sys.sleep(0.5)
      value <- as.numeric(seq_len(1e5)) + i
      if (shared) shmr::share(value) else value
    }, shared = shared, pool = pool, chunk_size = 1),
    warning = function(w) {
      deadline <- Sys.time() + 60
      while (!length(seen <<- written()) && Sys.time() < deadline) Sys.sleep(0.05)
      Sys.sleep(settle)
      stop("the caller gave up")
    }
  ), error = conditionMessage)
  list(stopped = stopped, seen = seen)
}

test_that("a handed-off result is the caller's and outlives the workers", {
  skip_on_cran()
  skip_if_not_installed("callr")
  old <- options(shmr.share_threshold = 1000)
  on.exit(options(old), add = TRUE)
  for (capacity in c("", "4096")) {
    # With a tiny capacity the workers' regions fall back to files.
    Sys.setenv(SHMR_SHM_CAPACITY = capacity)
    pool <- pool_create(2)
    Sys.unsetenv("SHMR_SHM_CAPACITY")
    res <- pool_lapply(1:2, function(i) as.numeric(seq_len(1e5)) + i)
    info <- shared_info(res[[2]])
    expect_identical(info$creator_pid, as.numeric(Sys.getpid()), info = capacity)
    expect_true(info$owner, info = capacity)
    expect_identical(info$backing, if (nzchar(capacity)) "mmap" else "shm", info = capacity)
    if (nzchar(capacity)) {
      expect_identical(dirname(info$path), normalizePath(file.path(tempdir(), "shmr")),
                       info = capacity)
    }
    pool_stop(pool)
    expect_false(shared_name(res[[2]]) %in% prune_shared(), info = capacity)
    seen <- in_other_process(function(name) sum(map_shared(name)), list(name = shared_name(res[[2]])))
    expect_identical(seen, sum(as.numeric(seq_len(1e5)) + 2), info = capacity)
    name <- shared_name(res[[2]])
    rm(res)
    invisible(gc())
    expect_false(region_exists(name), info = capacity)
  }
})

test_that("a result never adopted is removed by the caller", {
  skip_on_cran()
  skip_if_not_installed("callr")
  target <- shmr:::handoff_target()
  # A worker hands a result off and exits; the reply never reaches the caller.
  name <- callr::r(function(target) {
    unclass(shmr:::maybe_hand_off(as.numeric(seq_len(1e5)), 0, target))$name
  }, list(target = target))
  expect_true(startsWith(name, target$prefix))
  expect_true(region_exists(name))
  listed <- shared_regions()
  expect_identical(listed$creator_pid[listed$name == name], Sys.getpid())
  expect_false(name %in% prune_shared())
  expect_identical(shmr:::discard_handoffs(target), 1L)
  expect_false(region_exists(name))

  # Nor does it outlive a caller that exits without adopting it.
  got <- in_other_process(function() {
    target <- shmr:::handoff_target()
    name <- callr::r(function(target) {
      unclass(shmr:::maybe_hand_off(as.numeric(seq_len(1e5)), 0, target))$name
    }, list(target = target))
    list(name = name, there = file.exists(file.path(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"), name)))
  })
  expect_true(got$there)
  expect_false(region_exists(got$name))
})

test_that("a result handed off to a call that has stopped is removed, not leaked", {
  skip_on_cran()
  skip_if_not_installed("callr")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  old <- options(shmr.share_threshold = 1000)
  on.exit(options(old), add = TRUE)
  pool <- pool_create(2)
  on.exit(pool_stop(pool), add = TRUE)
  written <- function() {
    listed <- shared_regions()
    listed$name[listed$complete]
  }
  # The large result is lost in flight.
  got <- stop_with_reply_in_flight(pool, shared = FALSE, written = written)
  stopped <- got$stopped
  seen <- got$seen
  expect_identical(stopped, "the caller gave up")
  expect_length(seen, 1L)
  invisible(gc())
  expect_identical(written(), character())
  expect_false(any(file.exists(file.path(Sys.getenv("SHMR_SHM_DIR"), seen))))
  # The pool still works, and its results are the caller's.
  res <- pool_lapply(1:2, function(i) as.numeric(seq_len(1e5)) + i, pool = pool)
  expect_identical(sum(res[[2]]), sum(as.numeric(seq_len(1e5)) + 2))
})

test_that("shared objects FUN makes and returns become the caller's and outlive the workers", {
  skip_on_cran()
  skip_if_not_installed("callr")
  pool <- pool_create(2)
  on.exit(pool_stop(pool), add = TRUE)
  made <- function(i, tag) {
    list(vector = shmr::share(as.numeric(1:1000) + i),
         named = shmr::share(as.numeric(1:10) * i, name = sprintf("handed_%s_%d", tag, i)),
         frame = shmr::share(data.frame(a = 1:5 + i, b = letters[1:5])))
  }
  res <- pool_lapply(1:2, made, tag = Sys.getpid(), pool = pool)
  # (On R < 4.3 a data frame arrives as an ordinary list of shared columns.)
  parts <- function(k) list(res[[k]]$vector, res[[k]]$named, res[[k]]$frame$a)
  objects <- c(parts(1), parts(2))
  names <- vapply(objects, shared_name, "")
  paths <- unique(vapply(objects, function(x) shared_info(x)$path, ""))
  for (x in objects) {
    expect_identical(shared_info(x)$creator_pid, as.numeric(Sys.getpid()))
    expect_true(shared_info(x)$owner)
  }
  # The workers collect their own copies and exit: before, that removed the
  # regions (another process then found no region under those names).
  invisible(pool_lapply(1:4, function(i) { gc(); NULL }, pool = pool))
  pool_stop(pool)
  seen <- in_other_process(function(names) {
    vapply(names, function(name) sum(shmr::map_shared(name)), 0, USE.NAMES = FALSE)
  }, list(names = names))
  expect_identical(seen, c(sum(as.numeric(1:1000) + 1), sum(as.numeric(1:10)), 20,
                           sum(as.numeric(1:1000) + 2), sum(as.numeric(1:10) * 2), 25))
  # The caller removes them with its objects, as it does its own shares.
  expect_true(all(file.exists(paths)))
  rm(res, objects, x)
  invisible(gc())
  expect_false(any(file.exists(paths)))
})

test_that("a shared object FUN made, in a reply a stopped call never read, is removed", {
  skip_on_cran()
  skip_if_not_installed("callr")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  mine <- function() {
    listed <- shared_regions()
    listed$name[listed$complete & listed$creator_pid == Sys.getpid()]
  }
  backends <- c("psock", if (requireNamespace("mirai", quietly = TRUE)) "mirai")
  for (backend in backends) {
    pool <- pool_create(2, backend = backend)
    before <- mine()
    # The share element 2 makes names the caller once the worker hands it
    # over, as it writes the reply; the reply is let arrive, never read.
    got <- stop_with_reply_in_flight(pool, shared = TRUE,
                                     written = function() setdiff(mine(), before), settle = 0.5)
    stopped <- got$stopped
    seen <- got$seen
    expect_identical(stopped, "the caller gave up", info = backend)
    expect_length(seen, 1L)
    invisible(gc())
    expect_false(any(seen %in% shared_regions()$name), info = backend)
    # The pool still works, and what FUN shares is still the caller's.
    res <- pool_lapply(1:2, function(i) shmr::share(as.numeric(1:10) * i), pool = pool)
    expect_identical(res[[2]][], as.numeric(1:10) * 2, info = backend)
    expect_true(shared_info(res[[2]])$owner, info = backend)
    pool_stop(pool)
  }
})

test_that("a region handed to a caller that never reads the reply goes when the caller exits", {
  skip_on_cran()
  skip_if_not_installed("callr")
  # The caller ran a pool call; a worker's reply, with a shared object it
  # made, was handed over to it and never read (a call stopped as the reply
  # came). Before, the region stayed until a prune after the caller's exit.
  got <- in_other_process(function() {
    target <- shmr:::handoff_target()
    name <- callr::r(function(owner) {
      x <- shmr::share(as.numeric(1:1000))
      .Call(shmr:::shmr_set_reply_recipient, owner)
      invisible(serialize(x, NULL))
      sub("\\[.*", "", shmr::shared_name(x))
    }, list(owner = target$owner))
    kept <- shmr::segment_create(8)
    segment <- shmr::segment_info(kept)$name
    shmr::segment_close(kept, unlink = FALSE)
    listed <- shmr::shared_regions()
    list(name = name, mine = listed$creator_pid[listed$name == name] == Sys.getpid(),
         segment = segment)
  })
  expect_true(got$mine)
  expect_false(region_exists(got$name))
  # A segment kept on purpose stays (until a prune after its creator's exit).
  expect_true(region_exists(got$segment))
  expect_true(got$segment %in% prune_shared())
})

test_that("a closed shared object FUN returns fails its element; the worker stays", {
  skip_on_cran()
  skip_if_not_installed("callr")
  pool <- pool_create(1)
  on.exit(pool_stop(pool), add = TRUE)
  pid <- pool_status(pool)$pid
  closed <- function(i) {
    x <- shmr::share(as.numeric(1:10) + i)
    if (i == 2) close(x)
    list(x)
  }
  expect_error(pool_lapply(2, closed, pool = pool),
               "in element 1: FUN returned a shared object that was closed")
  res <- pool_lapply(1:3, closed, pool = pool, on_error = "continue")
  expect_s3_class(res[[2]], "error")
  expect_match(conditionMessage(res[[2]]), "shared object that was closed", fixed = TRUE)
  expect_identical(sum(res[[1]][[1]]), sum(as.numeric(1:10) + 1))
  expect_identical(sum(res[[3]][[1]]), sum(as.numeric(1:10) + 3))
  # Before, the reply broke off mid-stream and the worker died with it.
  expect_identical(pool_status(pool)$pid, pid)
  expect_identical(pool_sapply(1:2, function(i) i * 2, pool = pool), c(2, 4))
})

test_that("a shared object pool_dispatch() makes on a worker is the caller's and outlives the worker's copy", {
  skip_on_cran()
  skip_if_not_installed("callr")
  pool <- pool_create(2)
  on.exit(pool_stop(pool), add = TRUE)
  made <- pool_dispatch(1, quote(shmr::share(as.numeric(1:1000) * 3)), pool = pool)
  name <- shared_name(made)
  expect_identical(shared_info(made)$creator_pid, as.numeric(Sys.getpid()))
  expect_true(shared_info(made)$owner)
  # The worker collects its own copy: before, that removed the region, and
  # the object the caller held could no longer be sent to anyone.
  invisible(pool_dispatch(1, quote({ gc(); NULL }), pool = pool))
  expect_identical(nrow(shared_regions(name)), 1L)
  expect_identical(pool_sapply(1:2, function(i) sum(made), pool = pool),
                   rep(sum(as.numeric(1:1000) * 3), 2))
  pool_stop(pool)
  seen <- in_other_process(function(name) sum(shmr::map_shared(name)), list(name = name))
  expect_identical(seen, sum(as.numeric(1:1000) * 3))
  # The caller removes it with its object, as it does its own shares.
  rm(made)
  invisible(gc())
  expect_identical(nrow(shared_regions(name)), 0L)
})

test_that("a closed shared object pool_dispatch() returns is a clear error; the worker stays", {
  skip_on_cran()
  pool <- pool_create(1)
  on.exit(pool_stop(pool), add = TRUE)
  pid <- pool_status(pool)$pid
  # Before, the reply broke off mid-stream: the worker died with it and the
  # error said only that it had exited.
  expect_error(
    pool_dispatch(1, quote({ x <- shmr::share(as.numeric(1:10)); close(x); x }), pool = pool),
    "returned a shared object that was closed"
  )
  expect_identical(pool_status(pool)$pid, pid)
  expect_identical(pool_dispatch(1, quote(2 * 3), pool = pool), 6)
})

test_that("a large result holding the shared input's columns sends them by name, not copied", {
  skip_on_os(c("windows", "mac"))
  pool <- pool_create(1)
  on.exit(pool_stop(pool), add = TRUE)
  n <- 5e5
  d <- share(data.frame(a = as.numeric(seq_len(n)), b = rev(as.numeric(seq_len(n)))))
  # This process's regions (a handed-off result's is made for the caller):
  # other processes on the machine make theirs meanwhile.
  own_regions <- function() {
    with(shared_regions(), stats::setNames(bytes, name)[creator_pid == Sys.getpid()])
  }
  before <- names(own_regions())
  r <- pool_lapply(1, function(i, d) {
    d$z <- d$a * 2
    list(d = d)
  }, d = d, pool = pool)[[1]]
  expect_equal(r$d$z, d$a * 2)
  expect_equal(r$d$b, d$b)
  # Before, the whole frame was written to a new region for the reply
  # (12 MB: the two columns read from `d` as well as the new one).
  region <- function(x) sub("\\[.*$", "", shared_name(x))
  expect_identical(region(r$d$a), region(d))
  expect_identical(region(r$d$b), region(d))
  made <- own_regions()
  expect_lt(sum(made[setdiff(names(made), before)]), 2 * 8 * n)
  # A result whose shared part is the smaller one is still handed off, that
  # part copied, rather than sent through the connection.
  small <- share(as.numeric(1:1000))
  r <- pool_lapply(1, function(i, small) list(big = as.numeric(seq_len(n)) + i, small = small),
                   small = small, pool = pool)[[1]]
  expect_true(is_shared(r$big))
  expect_equal(r$big, as.numeric(seq_len(n)) + 1)
  expect_identical(r$small[], small[])
})
