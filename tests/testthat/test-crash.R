# A creator killed with SIGKILL at a random point while sharing leaves
# nothing that prune_shared() does not remove, and never a half-written
# region that map_shared() accepts; processes that mapped a region keep
# reading it after its creator died. Every run works in a private shm
# directory (SHMR_SHM_DIR) and a private data directory, so other activity
# on the machine cannot interfere. 10 kills here, 100 with SHMR_LONG_TESTS=1.

# Kills a forked child (parallel::mcparallel) with SIGKILL and waits until it
# is gone or a zombie: a process being killed can take a while to let go of
# large mappings, and until then it counts as alive for prune_shared().
kill_child <- function(job) {
  tools::pskill(job$pid, tools::SIGKILL)
  parallel::mccollect(job, wait = TRUE)
  stat <- sprintf("/proc/%d/stat", job$pid)
  for (i in 1:400) {
    state <- tryCatch(strsplit(sub(".*\\) ", "", readLines(stat, warn = FALSE)), " ")[[1]][1],
                      error = function(e) "gone", warning = function(w) "gone")
    if (state %in% c("Z", "X", "gone")) return(invisible(TRUE))
    Sys.sleep(0.025)
  }
  stop("process ", job$pid, " did not die")
}

# In another process: `runs` times, forks a child that shares (and closes)
# large objects in a loop, kills it with SIGKILL after a random delay, then
# maps every region left behind, prunes, and checks that nothing remains.
kill_while_sharing <- function(runs, backing) {
  in_other_process(function(runs, backing, kill_child) {
    shm <- tempfile("shm")
    data <- tempfile("data")
    dir.create(shm, mode = "0700")
    dir.create(data, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = shm)
    set.seed(20240611)
    # Made before forking, so the child spends its time in share().
    payload <- function(i) {
      list(iter = i, v = seq_len(c(2e6, 5e6, 1e5)[i %% 3 + 1]) + i, s = as.character(seq_len(2000) + i))
    }
    payloads <- lapply(1:6, payload)
    everything_in <- function(dir) list.files(dir, all.files = TRUE, no.. = TRUE)
    stats <- list(runs = 0, mapped = 0, not_found = 0, unfinished = 0, pruned = 0)
    problems <- character()
    for (run in seq_len(runs)) {
      # The child keeps every third object alive (kept) and says when it has
      # kept the first: the kill comes after that, so every run leaves a
      # region however slowly the child runs on a busy machine.
      first_kept <- tempfile("kept")
      job <- parallel::mcparallel({
        i <- 0
        kept <- list()
        repeat {
          i <- i + 1
          x <- share(payloads[[i %% 6 + 1]], backing = backing, path = data)
          if (i %% 3 != 0) {
            close(x)
          } else {
            kept[[length(kept) + 1L]] <- x
            if (length(kept) == 1L) file.create(first_kept)
          }
        }
      })
      for (wait in 1:2400) if (file.exists(first_kept)) break else Sys.sleep(0.025)
      unlink(first_kept)
      Sys.sleep(runif(1, 0.02, 0.4))
      suppressWarnings(kill_child(job))
      stats$runs <- stats$runs + 1
      left <- everything_in(shm)
      stats$unfinished <- stats$unfinished +
        any(startsWith(c(left, everything_in(data)), ".shmr_tmp_"))
      # Whatever is visible under a region name is complete, or not there.
      for (name in grep("^shmr_", left, value = TRUE)) {
        result <- tryCatch({
          y <- map_shared(name)
          ok <- identical(fetch(y), payloads[[y$iter]])
          close(y)
          if (ok) "mapped" else "wrong data"
        }, error = function(e) conditionMessage(e))
        if (identical(result, "mapped")) {
          stats$mapped <- stats$mapped + 1
        } else if (grepl("^shmr: no shared region named", result)) {
          stats$not_found <- stats$not_found + 1
        } else {
          problems <- c(problems, sprintf("run %d, %s: %s", run, name, result))
        }
      }
      stats$pruned <- stats$pruned + length(prune_shared())
      rest <- c(everything_in(shm), everything_in(data))
      if (length(rest)) {
        problems <- c(problems, sprintf("run %d left: %s", run, paste(rest, collapse = ", ")))
      }
      unlink(file.path(c(shm, data), rest))
    }
    list(stats = stats, problems = problems)
  }, list(runs = runs, backing = backing, kill_child = kill_child))
}

test_that("a creator killed while sharing leaves nothing prune_shared() keeps", {
  skip_on_cran()
  skip_on_os(c("windows", "mac"))
  runs <- short_or_long(5, 50)
  for (backing in c("shm", "mmap")) {
    got <- kill_while_sharing(runs, backing)
    expect_identical(got$problems, character(), info = backing)
    expect_identical(got$stats$runs, runs, info = backing)
    # Every run left regions (those the loop keeps), all of them removed.
    expect_gte(got$stats$pruned, runs, label = paste(backing, "regions pruned"))
    if (long_tests()) {
      # Over 50 kills, some land while a region is being written.
      expect_gt(got$stats$unfinished, 0, label = paste(backing, "kills during a write"))
    }
  }
})

test_that("consumers keep reading a region after its creator is killed", {
  skip_on_cran()
  skip_on_os(c("windows", "mac"))
  got <- in_other_process(function(kill_child) {
    shm <- tempfile("shm")
    data <- tempfile("data")
    dir.create(shm, mode = "0700")
    dir.create(data, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = shm)
    value <- list(v = seq_len(1e6) / 3, s = as.character(1:1e4), m = matrix(1:6, 2))
    out <- list()
    for (backing in c("shm", "mmap")) {
      names_file <- tempfile()
      job <- parallel::mcparallel({
        x <- share(value, backing = backing, path = data)
        writeLines(shared_name(x), names_file)
        Sys.sleep(60)
      })
      for (i in 1:200) if (file.exists(names_file) && length(readLines(names_file))) break else Sys.sleep(0.05)
      name <- readLines(names_file)
      y <- map_shared(name)
      view <- y$v
      before <- identical(fetch(y), value)
      suppressWarnings(kill_child(job))
      after_kill <- identical(fetch(y), value)
      pruned <- prune_shared()
      out[[backing]] <- list(
        before = before, after_kill = after_kill, pruned = identical(pruned, name),
        after_prune = identical(fetch(y), value) && identical(view[], value$v),
        serialized = length(serialize(y$v, NULL)) < 200,
        files_left = c(list.files(shm, all.files = TRUE, no.. = TRUE),
                       list.files(data, all.files = TRUE, no.. = TRUE)),
        remap = tryCatch({ map_shared(name); "mapped" }, error = function(e) conditionMessage(e))
      )
    }
    out
  }, list(kill_child = kill_child))
  for (backing in c("shm", "mmap")) {
    g <- got[[backing]]
    expect_true(g$before, info = backing)
    expect_true(g$after_kill, info = backing)
    expect_true(g$pruned, info = backing)
    expect_true(g$after_prune, info = backing)
    expect_identical(g$files_left, character(), info = backing)
    expect_match(g$remap, "no shared region named", info = backing)
  }
})
