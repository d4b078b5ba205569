# Interrupts during a pool map: the next map returns its own results.

test_that("two interrupts during a map never hand its results to the next map", {
  skip_on_cran()
  skip_without_callr()
  skip_if_sigint_ignored()
  markers <- tempfile("interrupts")
  dir.create(markers)
  on.exit(unlink(markers, recursive = TRUE), add = TRUE)
  rounds <- 3L
  child <- callr::r_bg(function(markers, rounds) {
    library(shmr)
    pool <- pool_create(2)
    on.exit(pool_stop(pool))
    wait_for <- function(file) {
      # The parent's second interrupt may come while waiting: wait on.
      repeat {
        done <- tryCatch({
          while (!file.exists(file)) Sys.sleep(0.02)
          TRUE
        }, interrupt = function(e) FALSE)
        if (done) return(invisible())
      }
    }
    lapply(seq_len(rounds), function(round) {
      running <- file.path(markers, paste0("running-", round))
      interrupted <- tryCatch({
        pool_lapply(1:4, function(i, running) {
          file.create(running)
          Sys.sleep(5)
          i
        }, running = running, chunk_size = 1)
        FALSE
      }, interrupt = function(e) TRUE)
      wait_for(file.path(markers, paste0("sent-", round)))
      list(interrupted = interrupted,
           next_map = unlist(pool_lapply(1:4, function(i) -i, chunk_size = 1)),
           pids_alive = vapply(pool_status(pool)$pid, shmr:::process_alive, TRUE))
    })
  }, args = list(markers = markers, rounds = rounds))
  on.exit(child$kill(), add = TRUE)
  for (round in seq_len(rounds)) {
    running <- file.path(markers, paste0("running-", round))
    expect_true(wait_for_file(running, child), label = paste("round", round, "started"))
    Sys.sleep(0.1)
    tools::pskill(child$get_pid(), tools::SIGINT)
    # The second one lands while the first is being cleaned up.
    Sys.sleep(0.3)
    tools::pskill(child$get_pid(), tools::SIGINT)
    file.create(file.path(markers, paste0("sent-", round)))
  }
  child$wait(120000)
  results <- child$get_result()
  for (round in seq_len(rounds)) {
    expect_true(results[[round]]$interrupted, label = paste("round", round, "interrupted"))
    expect_identical(results[[round]]$next_map, -(1:4))
    expect_true(all(results[[round]]$pids_alive))
  }
})

test_that("an interrupted map on a mirai pool cancels its chunks; the next map gets its own results", {
  skip_on_cran()
  skip_without_callr()
  skip_if_sigint_ignored()
  skip_if_not_installed("mirai")
  markers <- tempfile("interrupts")
  dir.create(markers)
  on.exit(unlink(markers, recursive = TRUE), add = TRUE)
  child <- callr::r_bg(function(markers) {
    library(shmr)
    pool <- pool_create(2, backend = "mirai")
    on.exit(pool_stop(pool))
    pids <- pool_status(pool)$pid
    interrupted <- tryCatch({
      pool_lapply(1:4, function(i, markers) {
        file.create(file.path(markers, paste0("running-", i)))
        # Computing, not in Sys.sleep(): a daemon interrupted there can,
        # rarely, crash (see ?pool_lapply), and the pool would replace it,
        # where this test checks that cancelling leaves the daemons running.
        start <- Sys.time()
        while (Sys.time() - start < 4) NULL
        file.create(file.path(markers, paste0("finished-", i)))
        i
      }, markers = markers, chunk_size = 1)
      FALSE
    }, interrupt = function(e) TRUE)
    next_map <- unlist(pool_lapply(1:4, function(i) -i, chunk_size = 1))
    # Long enough for a chunk that was not cancelled to finish.
    Sys.sleep(6)
    status <- pool_status(pool)
    list(interrupted = interrupted, next_map = next_map,
         status = status$status, same_daemons = setequal(status$pid, pids))
  }, args = list(markers = markers))
  on.exit(child$kill(), add = TRUE)
  deadline <- Sys.time() + 60
  while (!length(list.files(markers, "^running-")) && child$is_alive() && Sys.time() < deadline) {
    Sys.sleep(0.02)
  }
  expect_gt(length(list.files(markers, "^running-")), 0L)
  Sys.sleep(0.2)
  tools::pskill(child$get_pid(), tools::SIGINT)
  child$wait(120000)
  result <- child$get_result()
  expect_true(result$interrupted)
  expect_identical(result$next_map, -(1:4))
  expect_identical(list.files(markers, "^finished-"), character())
  expect_true(all(result$status == "ok"))
  expect_true(result$same_daemons)
})

test_that("an interrupt while a pool's workers are set up leaves no worker running", {
  skip_on_cran()
  skip_without_callr()
  skip_if_sigint_ignored()
  markers <- tempfile("starting")
  dir.create(markers)
  # The working directory of the caller, and so of its workers.
  work <- tempfile("work")
  dir.create(work)
  on.exit(unlink(c(markers, work), recursive = TRUE), add = TRUE)
  child <- callr::r_bg(function(markers) {
    library(shmr)
    # Each worker writes its session directory into a file named by its
    # process ID, changes its workspace, then takes longer to set up than
    # the test waits.
    init <- bquote({
      writeLines(tempdir(), file.path(.(markers), Sys.getpid()))
      assign("changed", TRUE, envir = globalenv())
      Sys.sleep(60)
    })
    tryCatch({
      pool_create(2, init = init)
      "created"
    }, interrupt = function(e) "interrupted")
  }, args = list(markers = markers), wd = work)
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
  Sys.sleep(0.2)
  tools::pskill(child$get_pid(), tools::SIGINT)
  child$wait(30000)
  expect_identical(child$get_result(), "interrupted")
  # Before, the workers went on with their set-up, with no pool to stop
  # them, for as long as it took.
  deadline <- Sys.time() + 10
  while (any(vapply(workers, shmr:::process_alive, TRUE)) && Sys.time() < deadline) {
    Sys.sleep(0.05)
  }
  expect_false(any(vapply(workers, shmr:::process_alive, TRUE)))
  # Ended by a signal, they could not remove their session directories,
  # nor had they told the pool where they were.
  expect_false(any(dir.exists(dirs)))
  # Ended without saving their workspace into the caller's directory (R
  # does so when SIGUSR1 or SIGUSR2 ends it), where it would overwrite a
  # user's own .RData.
  expect_identical(list.files(work, all.files = TRUE, no.. = TRUE), character())
})

test_that("after an interrupted pool_dispatch(), the next one to that worker returns its own value", {
  skip_on_cran()
  skip_without_callr()
  skip_if_sigint_ignored()
  markers <- tempfile("dispatch")
  dir.create(markers)
  on.exit(unlink(markers, recursive = TRUE), add = TRUE)
  child <- callr::r_bg(function(markers) {
    library(shmr)
    pool <- pool_create(2)
    on.exit(pool_stop(pool))
    interrupted <- tryCatch({
      pool_dispatch(1, bquote({
        file.create(file.path(.(markers), "running"))
        Sys.sleep(1)
        "first"
      }))
      FALSE
    }, interrupt = function(e) TRUE)
    # Long enough for the interrupted call's reply to arrive.
    Sys.sleep(2)
    list(interrupted = interrupted,
         second = pool_dispatch(1, quote("second")),
         third = pool_dispatch(1, quote("third")),
         map = unlist(pool_lapply(1:4, function(i) -i, chunk_size = 1)))
  }, args = list(markers = markers))
  on.exit(child$kill(), add = TRUE)
  running <- file.path(markers, "running")
  expect_true(wait_for_file(running, child))
  Sys.sleep(0.2)
  tools::pskill(child$get_pid(), tools::SIGINT)
  child$wait(60000)
  result <- child$get_result()
  expect_true(result$interrupted)
  # Before, the second call read the first one's reply ("first"), and every
  # later call to that worker the reply of the call before it.
  expect_identical(result$second, "second")
  expect_identical(result$third, "third")
  expect_identical(result$map, -(1:4))
})
