# prune_shared() removes a region only when its creator is known to be dead:
# a creator it cannot see (another PID namespace, as in containers sharing
# /dev/shm) or cannot check (no descriptor left) counts as alive.

rscript <- function() file.path(R.home("bin"), "Rscript")

pid_namespaces_available <- function() {
  Sys.which("unshare") != "" &&
    identical(suppressWarnings(system2("unshare", c("--pid", "--fork", "--mount-proc", "true"),
                                       stdout = FALSE, stderr = FALSE)), 0L)
}

# TRUE in the initial PID namespace, which sees every process of the machine.
sees_every_process <- function() {
  identical(Sys.readlink("/proc/self/ns/pid"), "pid:[4026531836]")
}

wait_for_file <- function(path, seconds = 60) {
  deadline <- Sys.time() + seconds
  while (!file.exists(path) && Sys.time() < deadline) Sys.sleep(0.1)
  file.exists(path)
}

test_that("prune_shared() never removes a region whose creator lives in another PID namespace", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_if_not(pid_namespaces_available(),
              "starting a PID namespace needs root (or user namespaces) and unshare(1)")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  ready <- tempfile()
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "library(shmr)",
    "x <- share(as.numeric(1:10))",
    sprintf("writeLines(c(shared_name(x), Sys.getpid()), %s)", deparse(ready)),
    "repeat Sys.sleep(1)"
  ), script)
  # The creator is process 1 of a new PID namespace; /dev/shm (here the
  # private shm directory) is the same file system.
  creator <- processx::process$new("unshare", c("--pid", "--fork", "--mount-proc", rscript(),
                                                "--vanilla", script), cleanup_tree = TRUE)
  on.exit(creator$kill_tree(), add = TRUE)
  expect_true(wait_for_file(ready))
  made <- readLines(ready)
  name <- made[1]
  expect_identical(made[2], "1")
  # Seen from here: PID 1 is another process (this namespace's init).
  expect_false(name %in% prune_shared())
  expect_true(region_exists(name))
  expect_true(shared_regions()$creator_alive[shared_regions()$name == name])

  # And from inside another namespace, a region of this process.
  mine <- share(as.numeric(1:5))
  inside <- system2("unshare", c("--pid", "--fork", "--mount-proc", rscript(), "--vanilla", "-e",
                                 shQuote("cat(shmr::prune_shared(), sep = '\\n')")),
                    stdout = TRUE)
  expect_false(shared_name(mine) %in% inside)
  expect_false(name %in% inside)
  expect_true(region_exists(shared_name(mine)))
  expect_true(region_exists(name))

  # Once the creator is killed, a namespace that sees every process knows it
  # is dead; one that does not leaves its region alone.
  creator$kill_tree()
  if (sees_every_process()) {
    # The creator may take a moment to go once its namespace is killed.
    deadline <- Sys.time() + 30
    pruned <- character()
    while (!name %in% pruned && Sys.time() < deadline) {
      pruned <- c(pruned, prune_shared())
      Sys.sleep(0.1)
    }
    expect_true(name %in% pruned)
    expect_false(region_exists(name))
  } else {
    expect_false(name %in% prune_shared())
  }
})

test_that("in a PID namespace whose /proc is another namespace's, prune_shared() keeps live regions", {
  skip_on_cran()
  skip_if_not(pid_namespaces_available(),
              "starting a PID namespace needs root (or user namespaces) and unshare(1)")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  out <- tempfile()
  script <- tempfile(fileext = ".R")
  # Without --mount-proc, /proc numbers processes as the parent namespace
  # does: /proc/1 is not this namespace's process 1. Read as if it were, it
  # made every live creator look dead (its PID taken by a process started
  # at another time), so a prune, in the creator or another process of the
  # namespace, removed the regions of live processes.
  writeLines(c(
    "library(shmr)",
    "x <- share(as.numeric(1:10), name = 'proc_of_parent')",
    "other <- system2(file.path(R.home('bin'), 'Rscript'),",
    "                 c('--vanilla', '-e', shQuote('cat(shmr::prune_shared(), sep = \"\\n\")')), stdout = TRUE)",
    "own <- prune_shared()",
    "saveRDS(list(pid = Sys.getpid(), other = other, own = own, alive = shared_regions()$creator_alive,",
    "             mapped = sum(map_shared('proc_of_parent'))), ", deparse(out), ")"
  ), script)
  status <- system2("unshare", c("--pid", "--fork", rscript(), "--vanilla", script))
  expect_identical(status, 0L)
  got <- readRDS(out)
  expect_identical(got$pid, 1L)
  expect_false(any(grepl("proc_of_parent", got$other, fixed = TRUE)))
  expect_length(got$own, 0)
  expect_false(any(got$alive %in% FALSE))
  expect_identical(got$mapped, 55)
})

test_that("in a PID namespace whose /proc is another namespace's, forked children's results go at exit", {
  skip_on_cran()
  skip_if_not(pid_namespaces_available(),
              "starting a PID namespace needs root (or user namespaces) and unshare(1)")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  out <- tempfile()
  script <- tempfile(fileext = ".R")
  # A region a forked child returns becomes its parent's, identified by the
  # parent's start time: read from /proc/<parent>, that of another process,
  # so the parent did not know the regions for its own and left them.
  writeLines(c(
    "library(shmr)",
    "got <- parallel::mclapply(1:2, function(i) share(as.numeric(1:10) + i), mc.cores = 2)",
    "saveRDS(list(sums = vapply(got, sum, 1), names = vapply(got, shared_name, '')), ", deparse(out), ")"
  ), script)
  status <- system2("unshare", c("--pid", "--fork", rscript(), "--vanilla", script))
  expect_identical(status, 0L)
  got <- readRDS(out)
  expect_identical(got$sums, c(65, 75))
  expect_false(any(vapply(got$names, region_exists, TRUE)))
})

time_namespaces_available <- function() {
  Sys.which("unshare") != "" &&
    identical(suppressWarnings(system2("unshare", c("--time", "--boottime", "1000", "--fork",
                                                    "true"), stdout = FALSE, stderr = FALSE)), 0L)
}

test_that("prune_shared() keeps the region of a live creator in another time namespace", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_if_not(time_namespaces_available(),
              "starting a time namespace needs root (or user namespaces), Linux 5.6 and unshare(1)")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  ready <- tempfile()
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "library(shmr)",
    "x <- share(as.numeric(1:10))",
    sprintf("writeLines(shared_name(x), %s)", deparse(ready)),
    "repeat Sys.sleep(1)"
  ), script)
  # Same PID namespace, but /proc/<pid>/stat shows the creator's start time
  # shifted by its namespace's boot-time offset.
  creator <- processx::process$new("unshare", c("--time", "--boottime", "100000", "--fork",
                                                rscript(), "--vanilla", script),
                                   cleanup_tree = TRUE)
  on.exit(creator$kill_tree(), add = TRUE)
  expect_true(wait_for_file(ready))
  name <- readLines(ready)
  expect_false(name %in% prune_shared())
  expect_true(region_exists(name))
  listed <- shared_regions()
  expect_true(listed$creator_alive[listed$name == name])
  # The creator sees this process's regions alive too.
  mine <- share(as.numeric(1:5))
  inside <- system2("unshare", c("--time", "--boottime", "100000", "--fork", rscript(),
                                 "--vanilla", "-e",
                                 shQuote("cat(shmr::prune_shared(), sep = '\\n')")),
                    stdout = TRUE)
  expect_false(shared_name(mine) %in% inside)
  expect_true(region_exists(shared_name(mine)))
  # Once it is gone, its region goes.
  creator$kill_tree()
  deadline <- Sys.time() + 30
  pruned <- character()
  while (!name %in% pruned && Sys.time() < deadline) {
    pruned <- c(pruned, prune_shared())
    Sys.sleep(0.1)
  }
  expect_true(name %in% pruned)
})

test_that("prune_shared() with two free file descriptors keeps regions it cannot check", {
  skip_on_cran()
  skip_if(Sys.which("prlimit") == "", "needs prlimit(1) to lower a process's descriptor limit")
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  x <- share(as.numeric(1:10)) # its creator, this process, is alive
  got <- in_other_process(function() {
    # R needs a high limit to start; lower it now, then take every
    # descriptor but two.
    system2("prlimit", c(sprintf("--pid=%d", Sys.getpid()), "--nofile=32:32"))
    cons <- list()
    repeat {
      con <- tryCatch(suppressWarnings(file(tempfile(), "w")), error = function(e) NULL)
      if (is.null(con)) break
      cons[[length(cons) + 1L]] <- con
    }
    close(cons[[1L]])
    close(cons[[2L]])
    pruned <- prune_shared()
    for (con in cons[-(1:2)]) close(con)
    list(taken = length(cons), pruned = pruned)
  })
  # The child really ran out of descriptors.
  expect_gt(got$taken, 2L)
  expect_false(shared_name(x) %in% got$pruned)
  expect_true(region_exists(shared_name(x)))
  expect_identical(x[], as.numeric(1:10))
})

test_that("a region of a creator killed in this namespace is still pruned", {
  skip_on_cran()
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  made <- tempfile()
  child <- callr::r_bg(function(made) {
    x <- shmr::share(as.numeric(1:10))
    writeLines(shmr::shared_name(x), made)
    Sys.sleep(600)
  }, list(made = made))
  on.exit(child$kill(), add = TRUE)
  expect_true(wait_for_file(made))
  name <- readLines(made)
  expect_false(name %in% prune_shared())
  child$kill()
  deadline <- Sys.time() + 30
  while (child$is_alive() && Sys.time() < deadline) Sys.sleep(0.1)
  expect_true(name %in% prune_shared())
  expect_false(region_exists(name))
})
