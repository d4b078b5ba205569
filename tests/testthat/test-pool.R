# Pools and parallel maps, with real worker processes.

skip_if_no_pool <- function() {
  skip_on_cran()
  skip_without_callr()
}

with_pool <- function(n, code, backend = "psock") {
  pool <- pool_create(n, backend = backend)
  on.exit(pool_stop(pool))
  force(code)
}

test_that("maps equal lapply, sapply and apply", {
  skip_if_no_pool()
  with_pool(2, {
    l <- list(a = 1:3, b = letters, c = NULL, d = list(x = 1))
    expect_identical(pool_lapply(l, length), lapply(l, length))
    expect_identical(pool_lapply(1:7, function(i, k) i * k, k = 3L), lapply(1:7, function(i) i * 3L))
    expect_identical(pool_sapply(c("x", "yy"), nchar), sapply(c("x", "yy"), nchar))
    expect_identical(pool_sapply(1:5, function(i) c(i, i^2)), sapply(1:5, function(i) c(i, i^2)))
    df <- data.frame(a = 1:4, b = c(2.5, 1, 0, NA), s = c("p", "q", "r", "s"))
    expect_identical(pool_lapply(df, class), lapply(df, class))
    expect_identical(pool_sapply(df, function(col) sum(!is.na(col))),
                     sapply(df, function(col) sum(!is.na(col))))
    m <- matrix(rnorm(60), 6, dimnames = list(paste0("r", 1:6), paste0("c", 1:10)))
    for (margin in 1:2) {
      expect_equal(pool_apply(m, margin, mean), apply(m, margin, mean), info = margin)
      expect_equal(pool_apply(m, margin, range), apply(m, margin, range), info = margin)
    }
    for (mat in list(matrix(1:12, 3), matrix(letters[1:12], 3), matrix(c(TRUE, FALSE), 2, 5),
                     matrix(as.raw(1:12), 4))) {
      for (margin in 1:2) {
        expect_identical(pool_apply(mat, margin, function(v) v[1]), apply(mat, margin, function(v) v[1]))
      }
    }
    expect_identical(pool_lapply(list(), identity), list())
    # Put together as apply() does, whatever FUN returns: with and without
    # dimnames, vectors, NULL, lists and results of different lengths.
    # Before, a matrix without dimnames came back with them, and NULLs as a
    # list.
    named <- matrix(1:6, 2, dimnames = list(c("a", "b"), c("x", "y", "z")))
    axes <- matrix(1:6, 2, dimnames = list(rows = c("a", "b"), cols = c("x", "y", "z")))
    funs <- list(identity = function(v) v, null = function(v) NULL, list = function(v) list(v),
                 ragged = function(v) seq_len(v[1]), named = function(v) c(lo = min(v), hi = max(v)),
                 empty = function(v) integer(), one = function(v) sum(v))
    for (mat in list(matrix(1:6, 2), named, axes)) {
      for (margin in 1:2) {
        for (f in names(funs)) {
          expect_identical(pool_apply(mat, margin, funs[[f]]), apply(mat, margin, funs[[f]]),
                           info = paste(f, margin, !is.null(dimnames(mat))))
        }
      }
    }
  })
})

test_that("a call of as many chunks as workers gives each worker one", {
  skip_if_no_pool()
  with_pool(2, {
    # The first worker took two chunks (it may have two waiting) before the
    # second got any: such a call ran its chunks one after the other.
    pids <- pool_sapply(1:2, function(i) Sys.getpid(), pool = pool_get())
    expect_length(unique(pids), 2L)
  })
})

test_that("seeds give one stream per element, whatever the workers and chunks", {
  skip_if_no_pool()
  draw <- function(i) runif(2)
  set.seed(1)
  before <- .Random.seed
  one <- with_pool(1, pool_lapply(1:9, draw, seed = 123, chunk_size = 9))
  two <- with_pool(2, list(
    pool_lapply(1:9, draw, seed = 123, chunk_size = 1),
    pool_lapply(1:9, draw, seed = 123, chunk_size = 4)
  ))
  expect_identical(one, two[[1]])
  expect_identical(one, two[[2]])
  expect_identical(.Random.seed, before)
  expect_false(identical(one[[1]], one[[2]]))
})

test_that("an error names the element and keeps its class; or is returned in place", {
  skip_if_no_pool()
  with_pool(2, {
    fail <- function(i) {
      if (i == 4) stop(structure(class = c("my_error", "error", "condition"),
                                 list(message = "bad input", call = NULL)))
      i
    }
    err <- tryCatch(pool_lapply(1:6, fail, chunk_size = 1), error = identity)
    expect_s3_class(err, "my_error")
    expect_match(conditionMessage(err), "in element 4: bad input")
    kept <- pool_lapply(1:6, fail, on_error = "continue")
    expect_s3_class(kept[[4]], "my_error")
    expect_identical(kept[-4], as.list(c(1:3, 5:6)))
    # The pool is still usable afterwards.
    expect_identical(pool_sapply(1:4, function(i) i + 1L), 2:5)
  })
})

test_that("a worker killed mid-call is replaced; a second death is an error, never a hang", {
  skip_if_no_pool()
  with_pool(2, {
    flag <- tempfile()
    res <- pool_lapply(1:6, function(i, flag) {
      if (i == 3 && !file.exists(flag)) {
        file.create(flag)
        tools::pskill(Sys.getpid(), tools::SIGKILL)
      }
      i * 2L
    }, flag = flag, chunk_size = 1)
    expect_identical(unlist(res), (1:6) * 2L)
    err <- tryCatch(pool_lapply(1:2, function(i) {
      if (i == 2) tools::pskill(Sys.getpid(), tools::SIGKILL)
      i
    }, chunk_size = 1), error = conditionMessage)
    expect_match(err, "a worker died twice while computing elements 2")
    status <- pool_status()
    expect_true(all(vapply(status$pid, shmr:::process_alive, TRUE)))
    expect_identical(pool_sapply(1:2, function(i) i), 1:2)
  })
})

test_that("a worker that dies while a child of its holds its socket is found by its process and replaced", {
  skip_if_no_pool()
  skip_if_not(nzchar(Sys.which("sleep")), "needs sleep")
  with_pool(2, {
    flag <- tempfile()
    child <- tempfile()
    on.exit(if (file.exists(child)) tools::pskill(as.integer(readLines(child)), tools::SIGKILL),
            add = TRUE)
    res <- pool_lapply(1:2, function(i, flag, child) {
      if (i == 2 && !file.exists(flag)) {
        file.create(flag)
        # The child inherits the worker's socket and keeps it open.
        system(sprintf("sleep 120 >/dev/null 2>&1 & echo $! > %s", child))
        tools::pskill(Sys.getpid(), tools::SIGKILL)
      }
      i
    }, flag = flag, child = child, chunk_size = 1)
    expect_identical(res, list(1L, 2L))
    # The call did not wait for the socket to close.
    expect_true(shmr:::process_alive(as.integer(readLines(child))))
  })
})

test_that("a map that stops with both workers busy leaves each worker a connection of its own", {
  skip_if_no_pool()
  # R gives a closed connection's number to the next one it opens. Here the
  # second worker's connection gets a lower number than the first's (a file
  # is closed, then the second worker dies and is replaced): stopping both
  # afterwards once closed the first replacement's connection through the
  # second's old number, and the next map waited forever, in another
  # process here so that it ends as a failure.
  out <- in_other_process(function() {
    held <- file(tempfile(), "w")
    pool <- pool_create(2)
    close(held)
    flag <- tempfile()
    killed <- pool_lapply(1:4, function(i, flag) {
      if (i == 3 && !file.exists(flag)) {
        file.create(flag)
        tools::pskill(Sys.getpid(), tools::SIGKILL)
      }
      i
    }, flag = flag, chunk_size = 1, pool = pool)
    rounds <- lapply(1:3, function(round) {
      err <- tryCatch(pool_lapply(1:6, function(i) {
        if (i == 1) stop("first element fails")
        Sys.sleep(0.5)
        i
      }, chunk_size = 1, pool = pool), error = conditionMessage)
      list(err = err, squares = pool_sapply(1:6, function(i) i^2, pool = pool))
    })
    pids <- pool_status(pool)$pid
    alive <- vapply(pids, shmr:::process_alive, TRUE)
    pool_stop(pool)
    list(killed = unlist(killed), rounds = rounds, pids = pids, alive = alive)
  }, timeout = 120)
  expect_identical(out$killed, 1:4)
  for (round in out$rounds) {
    expect_match(round$err, "in element 1: first element fails")
    expect_identical(round$squares, (1:6)^2)
  }
  expect_identical(length(unique(out$pids)), 2L)
  expect_true(all(out$alive))
})

test_that("a worker interrupted in FUN fails that element; the call does not hang", {
  skip_if_no_pool()
  # SIGINT is how a user stops a runaway task in one worker. It once ended
  # the chunk without a reply, and the caller waited for it forever.
  out <- in_other_process(function() {
    pool <- pool_create(2)
    err <- tryCatch(pool_lapply(1:2, function(i) {
      if (i == 1) {
        tools::pskill(Sys.getpid(), tools::SIGINT)
        Sys.sleep(5)
      }
      i
    }, chunk_size = 1, pool = pool), error = conditionMessage)
    in_place <- pool_lapply(1:3, function(i) {
      if (i == 2) {
        tools::pskill(Sys.getpid(), tools::SIGINT)
        Sys.sleep(5)
      }
      i
    }, chunk_size = 3, on_error = "continue", pool = pool)
    squares <- pool_sapply(1:4, function(i) i^2, pool = pool)
    pool_stop(pool)
    list(err = err, in_place = in_place, squares = squares)
  }, timeout = 60)
  # On R 4.5 the SIGINT does not interrupt the task (the call returns the
  # values, seen with R 4.5.0); on R 4.2 it does, in FUN. Either way the
  # call must end, with the values or with that error.
  if (is.character(out$err)) {
    expect_match(out$err, "in element 1: the worker was interrupted")
    # The element interrupted and those after it in its chunk fail; those
    # before it keep their values.
    expect_identical(out$in_place[[1]], 1L)
    for (k in 2:3) {
      expect_s3_class(out$in_place[[k]], "error")
      expect_match(conditionMessage(out$in_place[[k]]), "the worker was interrupted")
    }
  } else {
    expect_identical(out$err, list(1L, 2L))
    expect_identical(out$in_place, list(1L, 2L, 3L))
  }
  expect_identical(out$squares, (1:4)^2)
})

test_that("workers whose set-up fails are stopped with the error, not left waiting", {
  skip_if_no_pool()
  out <- in_other_process(function() {
    # PSOCK workers are detached from this process: they are found by a
    # variable of their environment, which they inherit from it.
    mark <- paste0("shmr_setup_test_", Sys.getpid())
    Sys.setenv(SHMR_TEST_MARK = mark)
    counts <- function() {
      environs <- Sys.glob("/proc/[0-9]*/environ")
      marked <- vapply(environs, function(f) {
        env <- tryCatch(suppressWarnings(readBin(f, "raw", 65536L)), error = function(e) raw())
        length(env) > 0L && grepl(mark, rawToChar(env[env != as.raw(0L)]), fixed = TRUE)
      }, TRUE)
      # Not this process: /proc shows the environment it started with.
      sum(marked)
    }
    # Workers left running keep their connections here open, until a
    # collection closes them (with a warning each) and they exit.
    before <- getAllConnections()
    errors <- vapply(1:2, function(k) tryCatch({
      pool_create(2, init = function() stop("typo in init"))
      "no error"
    }, error = conditionMessage), "")
    missing <- tryCatch({
      pool_create(1, packages = "shmrNoSuchPackage")
      "no error"
    }, error = conditionMessage)
    still_open <- length(setdiff(getAllConnections(), before))
    # Stopped workers exit once they read their end: give them a moment.
    deadline <- Sys.time() + 10
    while (counts() > 0L && Sys.time() < deadline) Sys.sleep(0.1)
    list(errors = errors, missing = missing, still_open = still_open, left = counts())
  }, timeout = 90)
  expect_match(out$errors, "typo in init")
  expect_match(out$missing, "shmrNoSuchPackage")
  expect_identical(out$still_open, 0L)
  expect_identical(out$left, 0L)
})

test_that("a worker abandoned by a call is killed once: its old pid is never signalled again", {
  skip_if_no_pool()
  # The call fails on element 1 while element 2 waits for the same worker
  # (a worker gets up to two chunks at once): that worker is killed and
  # replaced. Its pid may name another process once it is gone, so it must
  # get one signal, not one per clean-up step.
  out <- in_other_process(function() {
    # The tracer runs in tools' namespace, which reaches the global
    # environment of this process.
    assign("signalled", integer(), globalenv())
    trace("pskill", where = asNamespace("tools"), print = FALSE,
          tracer = quote(signalled <<- c(signalled, as.integer(pid))))
    pool <- pool_create(2)
    before <- pool_status(pool)$pid
    err <- tryCatch(pool_lapply(1:2, function(i) {
      if (i == 1) stop("first element fails")
      Sys.sleep(30)
      i
    }, chunk_size = 1, pool = pool), error = conditionMessage)
    after <- pool_status(pool)$pid
    squares <- pool_sapply(1:4, function(i) i^2, pool = pool)
    pool_stop(pool)
    untrace("pskill", where = asNamespace("tools"))
    list(err = err, signalled = get("signalled", globalenv()), before = before, after = after, squares = squares)
  }, timeout = 120)
  expect_match(out$err, "first element fails")
  replaced <- setdiff(out$before, out$after)
  expect_length(replaced, 1L)
  expect_identical(sum(out$signalled == replaced), 1L)
  expect_identical(out$squares, (1:4)^2)

  # Called again before the worker is replaced, kill_worker() leaves
  # whatever process the old pid names now alone.
  worker <- callr::r_bg(function() Sys.sleep(120))
  bystander <- callr::r_bg(function() Sys.sleep(120))
  on.exit(bystander$kill(), add = TRUE)
  pool <- shmr:::new_pool_object("psock", 1L, NULL, NULL)
  pool$pids <- worker$get_pid()
  shmr:::kill_worker(pool, 1L)
  # kill_worker() returns once the process is exiting; its parent (this
  # process) can reap it a moment later.
  deadline <- Sys.time() + 5
  while (worker$is_alive() && Sys.time() < deadline) Sys.sleep(0.02)
  expect_false(worker$is_alive())
  pool$pids <- bystander$get_pid()
  shmr:::kill_worker(pool, 1L)
  expect_true(bystander$is_alive())
})

test_that("workers that die or are killed leave no session directory behind", {
  skip_if_no_pool()
  # R removes its tempdir() when it exits, never when it is killed: each
  # dead or killed worker left one in /tmp, for good.
  out <- in_other_process(function() {
    pool <- pool_create(2)
    session_dirs <- function() {
      seen <- pool_lapply(1:20, function(i) {
        Sys.sleep(0.02)
        tempdir()
      }, chunk_size = 1, pool = pool)
      sort(unique(unlist(seen)))
    }
    at_start <- session_dirs()
    flag <- tempfile()
    pool_lapply(1:4, function(i, flag) {
      if (i == 3 && !file.exists(flag)) {
        file.create(flag)
        tools::pskill(Sys.getpid(), tools::SIGKILL)
      }
      i
    }, flag = flag, chunk_size = 1, pool = pool)
    after_death <- session_dirs()
    # Element 2's worker is still busy when element 1's error ends the
    # call: the pool kills it.
    err <- tryCatch(pool_lapply(1:2, function(i) {
      if (i == 1) stop("element 1 fails")
      Sys.sleep(60)
      i
    }, chunk_size = 1, pool = pool), error = conditionMessage)
    after_kill <- session_dirs()
    # A map stopped by pool_stop() with both workers busy.
    stopped <- FALSE
    try(withCallingHandlers(
      pool_lapply(1:4, function(i) {
        message("started")
        Sys.sleep(60)
      }, chunk_size = 1, pool = pool),
      message = function(m) {
        if (!stopped) {
          stopped <<- TRUE
          pool_stop(pool)
        }
        invokeRestart("muffleMessage")
      }), silent = TRUE)
    list(at_start = at_start, after_death = after_death, after_kill = after_kill, err = err,
         exist = lapply(list(at_start = at_start, after_death = after_death,
                             after_kill = after_kill), dir.exists),
         own = tempdir(), own_exists = dir.exists(tempdir()))
  }, timeout = 180)
  expect_length(out$at_start, 2L)
  expect_match(out$err, "element 1 fails")
  dead <- setdiff(out$at_start, out$after_death)
  killed <- setdiff(out$after_death, out$after_kill)
  expect_length(dead, 1L)
  expect_length(killed, 1L)
  expect_false(any(dir.exists(c(dead, killed))))
  # The last workers, killed by pool_stop() in the middle of their chunks.
  expect_false(any(dir.exists(out$after_kill)))
  expect_true(out$own_exists)
  expect_false(out$own %in% c(out$at_start, out$after_death, out$after_kill))
})

test_that("a worker the pool kills leaves no region behind; results it handed over stay", {
  skip_if_no_pool()
  out <- in_other_process(function() {
    pool <- pool_create(1)
    # The worker keeps a region of its own, and hands a large result over.
    kept <- pool_sapply(1, function(i) {
      assign("keep", shmr::share(rnorm(1e5)), globalenv())
      shmr::shared_name(keep)
    }, pool = pool)
    big <- pool_lapply(1, function(i) as.numeric(seq_len(2e6)), pool = pool)[[1]]
    before <- kept %in% shared_regions()$name
    # Element 1 fails while element 2 is in flight to the same worker: the
    # call kills that worker.
    killed <- pool_status(pool)$pid
    err <- tryCatch(pool_lapply(1:2, function(i) if (i == 1) stop("fail fast") else Sys.sleep(30),
                                chunk_size = 1, pool = pool), error = conditionMessage)
    alive <- shmr:::process_alive(killed)
    after <- kept %in% shared_regions()$name
    big_name <- shared_name(big)
    elsewhere <- callr::r(function(name) sum(shmr::map_shared(name)), list(name = big_name))
    pool_stop(pool)
    list(before = before, err = err, alive = alive, after = after,
         big_shared = is_shared(big), big_sum = sum(big), elsewhere = elsewhere)
  }, timeout = 120)
  expect_true(out$before)
  expect_match(out$err, "fail fast")
  expect_false(out$alive)
  expect_false(out$after)
  expect_true(out$big_shared)
  expect_identical(out$big_sum, sum(as.numeric(seq_len(2e6))))
  expect_identical(out$elsewhere, out$big_sum)
})

test_that("a departed worker's session directory is removed once its process is gone, never before", {
  skip_if_no_pool()
  # A worker that dies closes its connection before the system has taken
  # its process down: the pool notices it while the process still exists.
  worker <- callr::r_bg(function() Sys.sleep(120))
  on.exit(worker$kill(), add = TRUE)
  dir <- file.path(tempdir(), "Rtmp_departed_worker")
  dir.create(dir)
  writeLines("scratch", file.path(dir, "file"))
  pool <- shmr:::new_pool_object("psock", 1L, NULL, NULL)
  pool$pids <- worker$get_pid()
  pool$tempdirs <- dir
  shmr:::forget_worker(pool, 1L)
  expect_true(is.na(pool$tempdirs[1L]))
  shmr:::sweep_departed(pool)
  expect_true(dir.exists(dir))
  expect_identical(nrow(pool$departed), 1L)
  worker$kill()
  shmr:::sweep_departed(pool, wait = 10)
  expect_false(dir.exists(dir))
  expect_identical(nrow(pool$departed), 0L)
  # Never the caller's own directory, nor one not named as R names them.
  pool$pids <- worker$get_pid()
  pool$tempdirs <- tempdir()
  shmr:::forget_worker(pool, 1L)
  other <- file.path(tempdir(), "not_a_session")
  dir.create(other)
  pool$tempdirs <- other
  shmr:::forget_worker(pool, 1L)
  shmr:::sweep_departed(pool)
  expect_identical(nrow(pool$departed), 0L)
  expect_true(dir.exists(tempdir()))
  expect_true(dir.exists(other))
})

test_that("a worker killed during its set-up leaves no session directory; a live worker keeps its own", {
  skip_if_no_pool()
  # R names a session directory RtmpXXXXXX, which says nothing of whose it
  # is, and a worker killed before its set-up answered has not told the
  # pool its directory: it stayed in /tmp for good.
  markers <- tempfile("setup")
  dir.create(markers)
  go <- tempfile("go")
  on.exit(unlink(c(markers, go), recursive = TRUE), add = TRUE)
  child <- callr::r_bg(function(markers, go) {
    library(shmr)
    live <- pool_create(1)
    on.exit(pool_stop(live))
    live_dir <- pool_sapply(1, function(i) tempdir(), pool = live)
    # Each worker writes its session directory into a file named by its
    # process ID, then waits until the test has killed one of them.
    init <- bquote({
      writeLines(tempdir(), file.path(.(markers), Sys.getpid()))
      while (!file.exists(.(go))) Sys.sleep(0.02)
    })
    err <- tryCatch({
      pool_create(2, init = init)
      "created"
    }, error = conditionMessage)
    # A map sweeps the pool's directories.
    live_sees_its_own <- pool_sapply(1, function(i) dir.exists(tempdir()), pool = live)
    list(err = err, live_dir = live_dir, live_sees_its_own = live_sees_its_own,
         live_dir_exists = dir.exists(live_dir))
  }, args = list(markers = markers, go = go))
  workers <- integer()
  dirs <- character()
  on.exit({
    child$kill()
    for (pid in workers) tools::pskill(pid, tools::SIGKILL)
    unlink(dirs, recursive = TRUE)
  }, add = TRUE)
  deadline <- Sys.time() + 60
  while (length(list.files(markers)) < 2L && child$is_alive() && Sys.time() < deadline) {
    Sys.sleep(0.05)
  }
  workers <- as.integer(list.files(markers))
  expect_length(workers, 2L)
  dirs <- vapply(file.path(markers, workers), readLines, "")
  expect_true(all(dir.exists(dirs)))
  tools::pskill(workers[1], tools::SIGKILL)
  deadline <- Sys.time() + 10
  while (shmr:::process_alive(workers[1]) && Sys.time() < deadline) Sys.sleep(0.02)
  file.create(go)
  child$wait(60000)
  out <- child$get_result()
  expect_match(out$err, "a worker exited while it was set up", fixed = TRUE)
  expect_false(any(vapply(workers, shmr:::process_alive, TRUE)))
  # The killed worker's, and the other's, which exited as told.
  expect_false(any(dir.exists(dirs)))
  expect_true(out$live_sees_its_own)
  expect_true(out$live_dir_exists)
})

test_that("after closeAllConnections() a pool replaces its workers and leaves the caller's files alone", {
  skip_if_no_pool()
  out <- in_other_process(function() {
    pool <- pool_create(2)
    old_pids <- pool_status(pool)$pid
    closeAllConnections()
    path <- tempfile()
    log <- file(path, "w")
    squares <- pool_sapply(1:6, function(i) i^2, pool = pool)
    writeLines("still mine", log)
    pool_stop(pool)
    writeLines("after pool_stop", log)
    close(log)
    list(squares = squares, lines = readLines(path), old_pids = old_pids,
         old_alive = vapply(old_pids, shmr:::process_alive, TRUE))
  }, timeout = 120)
  expect_identical(out$squares, (1:6)^2)
  expect_identical(out$lines, c("still mine", "after pool_stop"))
  expect_false(any(out$old_alive))
})

test_that("a chunk that cannot be serialized is an error of the call, and no worker is replaced", {
  skip_if_no_pool()
  with_pool(2, {
    before <- pool_status()$pid
    # A closed shared object where FUN was made: R sends FUN's environment.
    f <- local({
      x <- share(as.numeric(seq_len(1e4)))
      close(x)
      function(i) i * 2
    })
    err <- tryCatch(pool_lapply(1:2, f), error = conditionMessage)
    expect_match(err, "cannot send elements .* to a worker: .*closed")
    expect_false(grepl("died", err))
    expect_identical(pool_status()$pid, before)
    # Gone from this environment, which the next FUN carries along.
    rm(f)
    expect_identical(pool_sapply(1:2, function(i) i * 2), c(2, 4))
  })
})

test_that("disjoint buffer writes from two workers all land in shared memory", {
  skip_if_no_pool()
  with_pool(2, {
    out <- shared_buffer("double", c(1000, 8), init = 0)
    pids <- pool_sapply(1:8, function(j, out) {
      out[, j] <- j + seq_len(1000) / 1000
      Sys.getpid()
    }, out = out, chunk_size = 1)
    expect_identical(length(unique(pids)), 2L)
    expected <- outer(seq_len(1000) / 1000, 1:8, `+`)
    expect_identical(out[, 1:8], expected)
    expect_true(is_shared(out))
  })
  v <- shared_buffer("integer", 10)
  expect_true(all(is.na(v[])))
  v[c(2, 4)] <- 7L
  v[-(1:8)] <- 1L
  expect_identical(v[], c(NA, 7L, NA, 7L, NA, NA, NA, NA, 1L, 1L))
  r <- shared_buffer("raw", 3)
  expect_identical(r[], as.raw(c(0, 0, 0)))
  expect_error(v[11] <- 1L, "out of bounds")
})

test_that("a large input is not copied into the workers", {
  skip_if_no_pool()
  with_pool(2, {
    m <- matrix(rnorm(2.5e7), ncol = 50) # 200 MB
    invisible(pool_sapply(1:2, function(i) i))
    before <- pool_status()$anonymous
    means <- pool_apply(m, 2, mean)
    after <- pool_status()$anonymous
    expect_equal(means, colMeans(m))
    # Each worker's private memory grows by far less than the matrix.
    expect_true(all(after - before < 0.05 * 8 * length(m)), label = paste(after - before))
    expect_true(all(pool_status()$shared_mapped > 0))
  })
})

test_that("a list of shared objects goes to the workers as it is, not shared again", {
  a <- share(rnorm(2e5))
  b <- share(rnorm(2e5))
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  # Before, the list (3.2 MB by object.size()) was copied into a new region
  # at every call, and remote hosts fetched it again each time.
  got <- pool_lapply(1:2, function(i, d) c(shmr::shared_name(d$a), shmr::shared_name(d$b)),
                     d = list(a = a, b = b), pool = pool)
  expect_identical(got, rep(list(c(shared_name(a), shared_name(b))), 2))
  # A list with a large part that is not shared is still shared for the call.
  c_plain <- rnorm(2e5)
  got <- pool_lapply(1:2, function(i, d) shmr::is_shared(d$c), d = list(a = a, c = c_plain), pool = pool)
  expect_identical(got, list(TRUE, TRUE))
})

test_that("large results come back through shared memory, owned by the caller", {
  skip_if_no_pool()
  with_pool(2, {
    res <- pool_lapply(1:2, function(i) rnorm(5e5) + i)
    expect_true(all(vapply(res, is_shared, TRUE)))
    name <- shared_name(res[[1]])
    expect_true(shared_info(res[[1]])$owner)
    # One listing: other processes' regions may come and go in between.
    regions <- shared_regions()
    expect_identical(regions$creator_alive[regions$name == name], TRUE)
    rm(res)
    invisible(gc())
    expect_false(region_exists(name))
  })
})

test_that("an argument FUN returns unchanged stays usable after the call, then is removed", {
  skip_if_no_pool()
  backends <- c("psock", if (requireNamespace("mirai", quietly = TRUE)) "mirai")
  for (backend in backends) {
    pool <- pool_create(2, backend = backend)
    s <- sample(letters, 2e5, TRUE)
    x <- as.numeric(seq_len(2e5))
    d <- data.frame(id = seq_len(2e5), s = sample(c("x", "y"), 2e5, TRUE))
    # X, an argument and a global, each above the threshold and shared for
    # the call: before, the results read regions the call closed as it
    # returned ("was closed"), or whose names were gone.
    results <- list(
      strings = pool_lapply(list(s), function(v) v, pool = pool),
      numbers = pool_lapply(list(x), function(v) v, pool = pool),
      argument = pool_lapply(1:2, function(i, v) v, v = s, pool = pool),
      global = pool_lapply(1:2, function(i) s, pool = pool),
      columns = pool_lapply(d, function(column) column, pool = pool)
    )
    expect_identical(results$strings, list(s), info = backend)
    expect_identical(results$numbers, list(x), info = backend)
    expect_identical(results$argument, list(s, s), info = backend)
    expect_identical(results$global, list(s, s), info = backend)
    expect_identical(results$columns, as.list(d), info = backend)
    # They go to another call, and to another process, by their names.
    expect_identical(pool_sapply(results$strings, function(v) sum(nchar(v)), pool = pool),
                     as.integer(sum(nchar(s))), info = backend)
    expect_identical(pool_sapply(results$numbers, sum, pool = pool), sum(x), info = backend)
    names <- unique(sub("\\[.*", "", unlist(lapply(unlist(results, recursive = FALSE),
                                                   shared_name))))
    expect_true(length(names) >= 1L, info = backend)
    expect_true(all(vapply(names, region_exists, TRUE)), info = backend)
    # The caller owns them, and they go with the results.
    rm(results)
    invisible(gc())
    expect_false(any(vapply(names, region_exists, TRUE)), info = backend)
    pool_stop(pool)
  }
})

test_that("empty inputs and a chunk size beyond the input give what base R gives", {
  skip_if_no_pool()
  with_pool(2, {
    expect_identical(pool_lapply(setNames(list(), character()), identity),
                     lapply(setNames(list(), character()), identity))
    expect_identical(pool_lapply(list(), identity), list())
    expect_identical(pool_sapply(character(), nchar), sapply(character(), nchar))
    empty_rows <- matrix(numeric(), 0, 3)
    expect_identical(pool_apply(empty_rows, 1, sum), apply(empty_rows, 1, sum))
    expect_identical(pool_apply(empty_rows, 2, sum), apply(empty_rows, 2, sum))
    # Before: "NAs introduced by coercion to integer range", then NA/NaN.
    for (size in list(Inf, 1e10, 6)) {
      expect_identical(pool_sapply(1:5, function(i) i * 2, chunk_size = size), (1:5) * 2)
    }
  })
})

test_that("a forked child cannot use its parent's pool: a clear error, never a hang", {
  skip_if_no_pool()
  skip_on_os("windows")
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  # Two children reading the same workers' replies took each other's and
  # waited forever; the mirai backend crashed the children.
  job <- parallel::mcparallel(list(
    explicit = tryCatch(pool_sapply(1:4, function(i) i, pool = pool), error = conditionMessage),
    default = tryCatch(pool_sapply(1:4, function(i) i), error = conditionMessage),
    stop = tryCatch(pool_stop(pool), error = conditionMessage)
  ))
  got <- parallel::mccollect(job, wait = TRUE)[[1]]
  for (case in names(got)) {
    expect_match(got[[case]], "belongs to process [0-9]+, which created it: a forked child",
                 info = case)
  }
  # The parent's pool is untouched.
  expect_identical(pool_sapply(1:4, function(i) i * 2, pool = pool), c(2, 4, 6, 8))
})

test_that("pool_stop() during a map ends the call and starts no worker", {
  skip_if_no_pool()
  backends <- c("psock", if (requireNamespace("mirai", quietly = TRUE)) "mirai")
  for (backend in backends) {
    pool <- pool_create(2, backend = backend)
    workers <- pool$pids
    stopped <- FALSE
    # A relayed message's handler is code of the caller's that runs while
    # the call waits for its workers.
    err <- tryCatch(withCallingHandlers(
      pool_lapply(1:40, function(i) {
        message("element ", i)
        Sys.sleep(0.05)
        i
      }, pool = pool, chunk_size = 1),
      message = function(m) {
        if (!stopped) {
          stopped <<- TRUE
          pool_stop(pool)
        }
        invokeRestart("muffleMessage")
      }), error = conditionMessage)
    expect_identical(err, "the pool was stopped with pool_stop() while this call was running",
                     label = backend)
    expect_identical(pool$pids, workers, label = backend)
    deadline <- Sys.time() + 10
    while (any(vapply(workers, shmr:::process_alive, TRUE)) && Sys.time() < deadline) {
      Sys.sleep(0.05)
    }
    expect_false(any(vapply(workers, shmr:::process_alive, TRUE)), label = backend)
    expect_error(pool_lapply(1:2, identity, pool = pool), "stopped", label = backend)
  }
})

test_that("a PSOCK pool used by the caller's own code during a map on it is an error, never a hang", {
  skip_if_no_pool()
  skip_without_callr()
  # In a process of its own: before, the inner use replaced the workers
  # still computing for the map, which then waited forever for their
  # replies, and only callr's time limit ended it.
  seen <- in_other_process(function() {
    pool <- pool_create(2)
    on.exit(pool_stop(pool))
    uses <- list(
      map = function() pool_sapply(1:2, function(j) j * 10, pool = pool),
      dispatch = function() pool_dispatch(1, quote(1 + 1), pool = pool),
      health = function() pool_health_check(pool)
    )
    lapply(uses, function(use) {
      # A relayed message's handler is code of the caller's that runs while
      # the call waits for its workers.
      err <- tryCatch(withCallingHandlers(
        pool_sapply(1:8, function(i) {
          message("element ", i)
          Sys.sleep(0.1)
          i
        }, pool = pool, chunk_size = 1),
        message = function(m) {
          use()
          invokeRestart("muffleMessage")
        }), error = conditionMessage)
      # The pool is whole again, and its next calls get their own results.
      list(err = err, map = pool_sapply(1:6, function(i) i * 2, pool = pool),
           dispatch = pool_dispatch(2, quote(3 + 4), pool = pool),
           status = pool_status(pool)$status)
    })
  }, timeout = 300)
  for (use in names(seen)) {
    expect_match(seen[[use]]$err, "cannot use this pool while a call on it is running",
                 label = use)
    expect_identical(seen[[use]]$map, (1:6) * 2, label = use)
    expect_identical(seen[[use]]$dispatch, 7, label = use)
    expect_identical(seen[[use]]$status, c("ok", "ok"), label = use)
  }
})

test_that("the mirai backend runs maps and keeps seeds", {
  skip_if_no_pool()
  skip_if_not_installed("mirai")
  with_pool(2, backend = "mirai", {
    expect_identical(pool_sapply(1:6, function(i) i^2), (1:6)^2)
    x <- share(rnorm(1e5))
    expect_identical(pool_sapply(1:2, function(i, x) shared_name(x), x = x), rep(shared_name(x), 2))
    mirai_draws <- pool_lapply(1:4, function(i) runif(1), seed = 9)
  })
  psock_draws <- with_pool(1, pool_lapply(1:4, function(i) runif(1), seed = 9))
  expect_identical(mirai_draws, psock_draws)
})

test_that("pool_create() respects mc.cores and _R_CHECK_LIMIT_CORES_; bad input is an error", {
  old_options <- options(mc.cores = 3)
  on.exit(options(old_options))
  old_limit <- Sys.getenv("_R_CHECK_LIMIT_CORES_", NA)
  on.exit(if (is.na(old_limit)) Sys.unsetenv("_R_CHECK_LIMIT_CORES_")
          else Sys.setenv("_R_CHECK_LIMIT_CORES_" = old_limit), add = TRUE)
  Sys.unsetenv("_R_CHECK_LIMIT_CORES_") # R CMD check sets it
  expect_identical(shmr:::usable_cores(), 3L)
  Sys.setenv("_R_CHECK_LIMIT_CORES_" = "TRUE")
  expect_identical(shmr:::usable_cores(), 2L)
  expect_error(pool_create(0), "whole number")
  expect_error(pool_create(1.5), "whole number")
  for (seed in list(1.5, Inf, NA_real_, 2^40, "1", 1:2))
    expect_error(pool_lapply(1:2, identity, seed = seed), "`seed` must be NULL or a whole number")
  # chunk_size = 1.5 was taken as 2, and any `progress` as no bar.
  for (chunk_size in list(1.5, 0, NA, "2", 1:2)) {
    expect_error(pool_lapply(1:3, identity, chunk_size = chunk_size),
                 "`chunk_size` must be a whole number >= 1", info = format(chunk_size))
  }
  for (progress in list("yes please", NA, 1, c(TRUE, FALSE), NULL)) {
    expect_error(pool_lapply(1:3, identity, progress = progress), "`progress` must be TRUE or FALSE",
                 info = format(progress))
  }
  expect_error(pool_apply(1:3, 1, sum), "must be a matrix")
  expect_error(pool_apply(matrix(1:4, 2), 3, sum), "MARGIN")
})

test_that("pool_create() refuses more workers than the machine can start, before starting any", {
  skip_if_no_pool()
  # Before, these started workers until memory or R's connections ran out.
  for (backend in c("psock", "mirai")) {
    expect_error(pool_create(1e6, backend = backend),
                 "`n` = 1,000,000 workers cannot fit in this machine's .* of memory")
  }
  # Leave 3 connections free: a PSOCK pool of 5 cannot have its sockets.
  held <- list()
  on.exit(for (con in held) close(con), add = TRUE)
  free <- function() shmr:::connection_table_size() - nrow(showConnections(all = TRUE)) - 1L
  while (free() > 3L) held[[length(held) + 1L]] <- textConnection("x")
  expect_error(pool_create(5), "5 PSOCK workers need a connection each, and this R session has 3 free")
  expect_identical(free(), 3L)
  for (con in held) close(con)
  held <- list()
  # A mirai pool takes no R connection.
  skip_if_not_installed("mirai")
  with_pool(1, expect_identical(pool_sapply(1:2, function(i) i, pool = pool_get()), 1:2),
            backend = "mirai")
})

test_that("shared objects reach parallel, mirai, future.apply and foreach workers as names", {
  skip_if_no_pool()
  x <- share(rnorm(2e6))
  probe <- function(x) list(name = shmr::shared_name(x), pid = Sys.getpid(),
                            anon = shmr:::process_memory()[["anonymous"]])
  check <- function(got, label) {
    for (g in got) {
      expect_identical(g$name, shared_name(x), label = label)
      expect_false(g$pid == Sys.getpid(), label = label)
    }
  }
  cl <- parallel::makePSOCKcluster(1)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  check(parallel::parLapply(cl, 1:2, function(i, obj, probe) probe(obj), obj = x, probe = probe),
        "parLapply")
  check(parallel::mclapply(1:2, function(i) probe(x), mc.cores = 2), "mclapply")
  if (requireNamespace("mirai", quietly = TRUE)) {
    mirai::daemons(1)
    got <- mirai::mirai_map(1:2, function(i, obj, probe) probe(obj),
                            .args = list(obj = x, probe = probe))[]
    mirai::daemons(0)
    check(got, "mirai_map")
  }
  if (requireNamespace("future.apply", quietly = TRUE) && requireNamespace("future", quietly = TRUE)) {
    future::plan(future::multisession, workers = 2)
    got <- future.apply::future_lapply(1:2, function(i) probe(x))
    future::plan(future::sequential)
    check(got, "future_lapply")
  }
  if (requireNamespace("foreach", quietly = TRUE) && requireNamespace("doParallel", quietly = TRUE)) {
    doParallel::registerDoParallel(cl)
    `%dopar%` <- foreach::`%dopar%`
    got <- foreach::foreach(i = 1:2) %dopar% probe(x)
    foreach::registerDoSEQ()
    check(got, "foreach")
  }
})

test_that("a stopped pool or something else as `pool` is a clear error", {
  skip_if_no_pool()
  pool <- pool_create(1)
  pool_stop(pool)
  before <- pool_get()
  expect_error(pool_lapply(1:2, identity, pool = pool), "`pool` was stopped")
  expect_error(pool_sapply(1:2, identity, pool = pool), "`pool` was stopped")
  expect_error(pool_apply(matrix(1:4, 2), 1, sum, pool = pool), "`pool` was stopped")
  # No pool was started in its place.
  expect_identical(pool_get(), before)
  expect_error(pool_lapply(1:2, identity, pool = "x"),
               "`pool` must be NULL or a pool from pool_create\\(\\), not character")
  expect_error(pool_lapply(list(), identity, pool = list()), "`pool` must be NULL or a pool")
  expect_error(pool_status(pool), "stopped")
})

test_that("the sharing threshold option is checked", {
  old <- options(shmr.share_threshold = NA)
  on.exit(options(old))
  expect_error(pool_lapply(1:2, identity), "option `shmr.share_threshold` must be one number")
  options(shmr.share_threshold = "1MB")
  expect_error(pool_lapply(1:2, identity), "shmr.share_threshold")
  options(shmr.share_threshold = c(1, 2))
  expect_error(pool_lapply(1:2, identity), "shmr.share_threshold")
})

test_that("liveness and memory of a process that is gone are answers, not warnings", {
  skip_without_callr()
  gone <- callr::r_bg(function() Sys.getpid())
  gone$wait()
  pid <- gone$get_result()
  gone$kill()
  expect_silent(alive <- shmr:::process_alive(pid))
  expect_false(alive)
  expect_silent(memory <- shmr:::process_memory(pid))
  expect_true(all(is.na(memory)))
  expect_silent(mapped <- shmr:::region_bytes_mapped(pid))
  expect_true(is.na(mapped))
  expect_true(shmr:::process_alive(Sys.getpid()))
  # With its start time, a PID that another process took since is gone.
  self <- .Call(shmr:::shmr_process_start)
  expect_identical(self[1], as.numeric(Sys.getpid()))
  expect_true(shmr:::process_alive(self[1], self[2]))
  expect_false(shmr:::process_alive(self[1], self[2] + 2))
  expect_false(shmr:::process_alive(pid, self[2]))
  expect_gt(shmr:::process_memory()[["rss"]], 0)
  x <- share(rnorm(1e5))
  invisible(sum(x))
  expect_gte(shmr:::region_bytes_mapped(Sys.getpid()), 8e5)
  close(x)
  expect_error(shmr:::process_alive("1"), "one process id")
})

test_that("pool_status() and pool_stop() report a killed worker without warnings", {
  skip_if_no_pool()
  pool <- pool_create(2)
  on.exit(pool_stop(pool))
  victim <- pool$pids[1]
  tools::pskill(victim, tools::SIGKILL)
  deadline <- Sys.time() + 10
  while (shmr:::process_alive(victim) && Sys.time() < deadline) Sys.sleep(0.05)
  expect_silent(status <- pool_status(pool))
  expect_identical(status$status, c("dead", "ok"))
  expect_true(is.na(status$rss[1]))
  expect_silent(pool_stop(pool))
})

test_that("malformed pools, packages and rss_limit are clear errors, not internal ones", {
  fake <- structure(list(), class = "shmr_pool")
  # Before: "NA/NaN argument" in starts[t]:ends[t], and "argument is of
  # length zero" in pool_status()'s own code.
  expect_error(pool_sapply(1:2, identity, pool = fake, progress = FALSE),
               "`pool` must be NULL or a pool from pool_create\\(\\), not an object of class shmr_pool")
  expect_error(pool_status(fake), "`pool` must be a pool from pool_create()", fixed = TRUE)
  expect_error(pool_stop(fake), "`pool` must be a pool from pool_create()", fixed = TRUE)
  # toupper()'s "invalid multibyte string" before.
  expect_error(pool_create(1, rss_limit = rawToChar(as.raw(c(0xff, 0xfe)))),
               "`rss_limit` must be NULL, a number of bytes")
  # Refused before any worker starts; a long name is cut.
  expect_error(pool_create(1, packages = NA_character_), "`packages` must be a character vector of package names")
  err <- tryCatch(pool_create(1, packages = strrep("p", 5000)), error = conditionMessage)
  expect_match(err, "^`packages`: there is no package called 'ppp")
  expect_lt(nchar(err), 200)
})

test_that("a pool maps over an environment as lapply() does; a worker that exits in init is said so", {
  skip_if_no_pool()
  e <- new.env()
  e$a <- 1
  e$b <- 2
  # Before: "object of type 'environment' is not subsettable" in X[p].
  got <- pool_lapply(e, function(v) v * 10, progress = FALSE)
  expect_identical(got[order(names(got))], list(a = 10, b = 20))
  # Before: parallel's "error reading from connection" in unserialize(node$con).
  err <- tryCatch(pool_create(1, init = function() quit(save = "no")), error = function(e) e)
  expect_identical(conditionMessage(err),
                   "a worker exited while it was set up (`init` or loading `packages`)")
  expect_null(conditionCall(err))
})

test_that("a worker's exit is told as such in a session of another language", {
  skip_if_no_pool()
  said <- in_other_process(function() {
    Sys.setLanguage("de")
    translated <- gettext("error reading from connection", domain = "R")
    if (identical(translated, "error reading from connection")) return(NULL)
    message_of <- function(expr) tryCatch(expr, error = conditionMessage)
    p <- pool_create(1)
    on.exit(pool_stop(pool = p))
    list(set_up = message_of(pool_create(1, init = function() quit(save = "no"))),
         dispatch = message_of(pool_dispatch(1, quote(quit(save = "no")), pool = p)),
         after = pool_dispatch(1, quote(2 + 2), pool = p))
  })
  if (is.null(said)) skip("R has no German translation of its messages here")
  # Before: "error on a worker while it was set up ...: Lesefehler aus Verbindung".
  expect_identical(said$set_up, "a worker exited while it was set up (`init` or loading `packages`)")
  expect_match(said$dispatch, "^a worker exited while it evaluated `expr` \\(worker 1\\)")
  expect_identical(said$after, 4)
})

test_that("a wrong pool or FUN is named in the error", {
  expect_error(pool_stop(pool = 1), "`pool` must be a pool from pool_create()", fixed = TRUE)
  expect_error(pool_stop(pool = "x"), "`pool` must be a pool from pool_create()", fixed = TRUE)
  # Before: match.fun()'s "'NULL' is not a function, character or symbol",
  # which does not say which argument.
  expect_error(pool_sapply(1:3, NULL), "`FUN` must be a function or the name of one, not NULL",
               fixed = TRUE)
  expect_error(pool_lapply(1:3, 42), "`FUN` must be a function or the name of one, not double",
               fixed = TRUE)
  expect_error(pool_apply(matrix(1:4, 2), 2, NA_character_),
               "`FUN` must be a function or the name of one, not NA", fixed = TRUE)
  expect_error(pool_sapply(1:3, c("sum", "max")),
               "`FUN` must be a function or the name of one, not a character vector of length 2",
               fixed = TRUE)
  err <- tryCatch(pool_sapply(1:3, list()), error = function(e) e)
  expect_null(conditionCall(err))
})

test_that("a pool dropped without pool_stop() ends its workers while another pool runs, under warn = 2 too", {
  skip_if_not(dir.exists("/proc/self/fd"))
  sockets_of <- function(pid) {
    links <- Sys.readlink(list.files(sprintf("/proc/%d/fd", pid), full.names = TRUE))
    sum(startsWith(links, "socket:"))
  }
  # Ended: gone, or a zombie its new parent has not reaped yet.
  state <- function(pid) {
    stat <- tryCatch(readLines(sprintf("/proc/%d/stat", pid), warn = FALSE)[1L],
                     error = function(e) "gone", warning = function(w) "gone")
    if (identical(stat, "gone")) stat else sub("^.*\\) (.).*$", "\\1", stat)
  }
  # Under options(warn = 2), R's own finalizer of an unused connection
  # failed on its warning and left the connection open: the old worker ran
  # on (R CMD check's single session, where R 4.2's table() had left warn
  # = 2 set).
  for (warn in c(0, 2)) {
    first <- pool_create(1)
    old <- pool_status(first)$pid
    second <- pool_create(1)
    on.exit(pool_stop(second), add = TRUE)
    # The worker started second holds its own connection only, not a copy
    # of the caller's end of the first worker's.
    expect_identical(sockets_of(pool_status(second)$pid), 1L, info = paste("warn", warn))
    # Dropped: unless something else in this session still holds the pool.
    collected <- FALSE
    reg.finalizer(first, function(e) collected <<- TRUE)
    rm(first)
    withr::with_options(list(warn = warn), suppressWarnings(gc()))
    if (!collected) skip("the dropped pool is still referenced in this session")
    deadline <- Sys.time() + 10
    while (!state(old) %in% c("gone", "Z") && Sys.time() < deadline) Sys.sleep(0.1)
    expect_true(state(old) %in% c("gone", "Z"),
                info = paste("warn", warn, "state", state(old), "sockets", sockets_of(old)))
    expect_identical(unlist(pool_lapply(1:2, function(i) i * 2, pool = second)), c(2, 4))
    pool_stop(second)
  }
})

test_that("workers start under options(OutDec = \",\", scipen = -9)", {
  skip_if_no_pool()
  # parallel pasted its timeouts as "2,592e+06" into the workers' command
  # line; the workers could not read them and never connected, and
  # pool_create() failed after waiting 4 minutes.
  withr::local_options(list(OutDec = ",", scipen = -9))
  pool <- pool_create(1)
  on.exit(pool_stop(pool), add = TRUE)
  expect_identical(unlist(pool_lapply(1:2, function(i) i / 2, pool = pool)), c(0.5, 1))
  expect_identical(pool_status(pool)$status, "ok")
})

test_that("the large slots of an S4 or S7 argument are shared for the call, and released after it", {
  skip_if_no_pool()
  methods::setClass("ShmrPoolModel", representation(coef = "numeric", fitted = "numeric", label = "character"),
                    where = globalenv())
  on.exit(methods::removeClass("ShmrPoolModel", where = globalenv()), add = TRUE)
  model <- methods::new("ShmrPoolModel", coef = c(1, 2), fitted = rnorm(5e5), label = "m")
  # All its data in attributes and no S4 bit: as an S7 object, made with base R.
  s7_like <- structure(asS3(model, complete = FALSE), class = "shmr_s7_like")
  with_pool(2, {
    # Before, such an argument (an lme4 fit, say) went to every worker by value.
    got <- pool_lapply(1:2, function(i, m) c(shmr::is_shared(m@fitted), shmr::is_shared(m@coef),
                                             sum(m@fitted), methods::is(m, "ShmrPoolModel")),
                       m = model)
    expect_identical(got, rep(list(c(TRUE, FALSE, sum(model@fitted), TRUE)), 2))
    got <- pool_lapply(1:2, function(i, m) c(shmr::is_shared(attr(m, "fitted")), isS4(m),
                                             inherits(m, "shmr_s7_like")),
                       m = s7_like)
    expect_identical(got, rep(list(c(TRUE, FALSE, TRUE)), 2))
    # A slot FUN returns unchanged stays usable after the call; the region
    # goes with the result.
    back <- pool_lapply(1, function(i, m) m@fitted, m = model)[[1]]
    expect_identical(back, model@fitted)
    name <- shared_name(back)
    expect_true(region_exists(name))
    rm(back)
    invisible(gc())
    expect_false(region_exists(name))
  })
})
