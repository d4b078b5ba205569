# The mirai backend of pools on this host: the caller's random numbers are
# left alone, dead daemons are replaced (or, for daemons the pool did not
# start, reported and not replaced), and a pool can run on daemons that are
# already connected to a compute profile. Several hosts: test-remote-hosts.R.

skip_if_not_installed("mirai")

wait_connections <- function(profile, n, timeout = 30) {
  deadline <- Sys.time() + timeout
  while (mirai::status(.compute = profile)$connections != n && Sys.time() < deadline) {
    Sys.sleep(0.05)
  }
  mirai::status(.compute = profile)$connections
}

test_that("pool_create(backend = 'mirai') leaves the caller's random numbers alone", {
  set.seed(42)
  state <- .Random.seed
  pool <- pool_create(1, backend = "mirai")
  on.exit(pool_stop(pool))
  expect_identical(.Random.seed, state)
  expect_identical(runif(1), {
    set.seed(42)
    runif(1)
  })
  # Without a random number state, none is created.
  pool_stop(pool)
  rm(".Random.seed", envir = globalenv())
  pool <- pool_create(1, backend = "mirai")
  expect_false(exists(".Random.seed", envir = globalenv(), inherits = FALSE))
})

test_that("a mirai pool replaces a daemon that died between calls, and one that died in a call", {
  pool <- pool_create(2, backend = "mirai")
  on.exit(pool_stop(pool))
  before <- pool_status(pool)
  expect_identical(before$status, c("ok", "ok"))
  # Each daemon's session directory, by pid.
  session_dirs <- function() {
    seen <- pool_lapply(1:20, function(i) {
      Sys.sleep(0.05)
      list(pid = Sys.getpid(), dir = tempdir())
    }, pool = pool, chunk_size = 1)
    dirs <- vapply(seen, function(s) s$dir, "")
    names(dirs) <- vapply(seen, function(s) as.character(s$pid), "")
    dirs[!duplicated(dirs)]
  }
  dirs <- session_dirs()
  expect_setequal(names(dirs), as.character(before$pid))
  tools::pskill(before$pid[1], tools::SIGKILL)
  expect_identical(wait_connections(pool$profile, 1L), 1L)
  got <- pool_lapply(1:20, function(i) { Sys.sleep(0.05); Sys.getpid() }, pool = pool)
  # R leaves a killed session's directory behind; the pool that started the
  # daemon removes it.
  expect_false(dir.exists(dirs[[as.character(before$pid[1])]]))
  expect_true(dir.exists(dirs[[as.character(before$pid[2])]]))
  after <- pool_status(pool)
  expect_identical(after$status, c("ok", "ok"))
  expect_false(before$pid[1] %in% after$pid)
  expect_identical(after$pid[2], before$pid[2])
  expect_identical(mirai::status(.compute = pool$profile)$connections, 2L)
  # Both workers, the replacement among them, took part.
  expect_setequal(unique(unlist(got)), after$pid)
  # A daemon killed while it runs a chunk: replaced, the chunk run again.
  flag <- tempfile()
  on.exit(unlink(flag), add = TRUE)
  res <- pool_lapply(1:6, function(i, flag) {
    if (i == 3 && !file.exists(flag)) {
      file.create(flag)
      tools::pskill(Sys.getpid(), tools::SIGKILL)
    }
    i * 10
  }, flag = flag, pool = pool, chunk_size = 1)
  expect_identical(unlist(res), seq(10, 60, 10))
  expect_identical(wait_connections(pool$profile, 2L), 2L)
  expect_identical(pool_status(pool)$status, c("ok", "ok"))
})

test_that("a pool over connected daemons uses them, leaves them running, and never adds any", {
  profile <- "shmr_test_borrowed"
  mirai::daemons(2, .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile))
  expect_identical(wait_connections(profile, 2L), 2L)
  expect_error(pool_create(2, backend = "mirai", compute = profile), "not both")
  expect_error(pool_create(compute = profile), "backend = \"mirai\"")
  pool <- pool_create(backend = "mirai", compute = profile)
  status <- pool_status(pool)
  expect_identical(nrow(status), 2L)
  expect_identical(status$host, rep(shmr:::host_identity(), 2))
  expect_identical(unlist(pool_lapply(1:4, function(i) i + 1L, pool = pool)), 2:5)
  # A daemon that dies is reported, not replaced: the pool did not start it.
  tools::pskill(status$pid[1], tools::SIGKILL)
  expect_identical(wait_connections(profile, 1L), 1L)
  expect_identical(unlist(pool_lapply(1:4, function(i) i + 1L, pool = pool)), 2:5)
  expect_identical(pool_status(pool)$status, c("dead", "ok"))
  expect_identical(mirai::status(.compute = profile)$connections, 1L)
  pool_stop(pool)
  # Stopping the pool leaves the daemons it borrowed running.
  expect_identical(mirai::status(.compute = profile)$connections, 1L)
  expect_error(pool_create(backend = "mirai", compute = "shmr_no_such_profile"), "no mirai daemons")
})

test_that("a pool whose daemon runs a task of the caller's says what it waits for", {
  profile <- "shmr_test_busy"
  mirai::daemons(1, .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile))
  expect_identical(wait_connections(profile, 1L), 1L)
  # An idle daemon answers at once: no message.
  expect_no_message(idle <- pool_create(backend = "mirai", compute = profile))
  pool_stop(idle)
  # A daemon busy with the caller's own task answers when it ends; until
  # then the pool says what it waits for, instead of seeming to hang.
  busy <- mirai::mirai({ Sys.sleep(8); "done" }, .compute = profile)
  expect_message(pool <- pool_create(backend = "mirai", compute = profile),
                 "Waiting for 1 of the 1 daemon of compute profile")
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  expect_false(mirai::unresolved(busy))
  expect_identical(busy[], "done")
  expect_identical(nrow(pool_status(pool)), 1L)
  expect_identical(unlist(pool_lapply(1:2, function(i) i * 2L, pool = pool)), c(2L, 4L))
})

test_that("without n or compute, a mirai pool uses the daemons of mirai's default profile", {
  mirai::daemons(2)
  on.exit(mirai::daemons(0))
  expect_identical(wait_connections("default", 2L), 2L)
  for (pool in list(pool_create(backend = "mirai"),
                    pool_create(backend = "mirai", compute = "default"))) {
    expect_true(pool$borrowed)
    expect_identical(pool$profile, "default")
    expect_identical(nrow(pool_status(pool)), 2L)
    expect_identical(unlist(pool_lapply(1:4, function(i) i * 3L, pool = pool)), 3L * 1:4)
    pool_stop(pool)
    expect_identical(mirai::status()$connections, 2L)
  }
})

# A launcher that starts the daemon `delay` seconds later and returns at
# once, as sbatch or a slow ssh would; mirai passes it the daemon's command.
# `env`: variables set for the daemon.
late_launcher <- function(delay, env = character(), envir = parent.frame()) {
  path <- tempfile("shmr-late-", fileext = ".sh")
  assignments <- paste(sprintf("%s=%s ", names(env), shQuote(env)), collapse = "")
  writeLines(c("#!/bin/sh", sprintf(
    "( sleep %g; %sexec sh -c \"exec $1\" ) </dev/null >/dev/null 2>&1 &", delay, assignments)), path)
  Sys.chmod(path, "0700")
  do.call(on.exit, list(bquote(unlink(.(path))), add = TRUE), envir = envir)
  mirai::remote_config(command = path, args = ".", quote = TRUE,
                       rscript = file.path(R.home("bin"), "Rscript"))
}

test_that("a pool waits for the first daemon of a profile whose daemons start late", {
  profile <- "shmr_test_late"
  mirai::daemons(url = "tcp://127.0.0.1:0", .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile), add = TRUE)
  mirai::launch_remote(1L, remote = late_launcher(2), .compute = profile)
  expect_identical(mirai::status(.compute = profile)$connections, 0L)
  expect_message(pool <- pool_create(backend = "mirai", compute = profile),
                 "Waiting up to 600 s for a mirai daemon")
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  first <- pool_status(pool)
  expect_identical(nrow(first), 1L)
  pids <- unique(unlist(pool_lapply(1:4, function(i) Sys.getpid(), pool = pool)))
  expect_identical(pids, first$pid)
  # Its only daemon gone and another on its way: the next map waits for it.
  tools::pskill(first$pid, tools::SIGKILL)
  expect_identical(wait_connections(profile, 0L), 0L)
  mirai::launch_remote(1L, remote = late_launcher(2), .compute = profile)
  expect_message(got <- pool_lapply(1:4, function(i) Sys.getpid(), pool = pool), "Waiting")
  expect_length(unique(unlist(got)), 1L)
  expect_false(first$pid %in% unlist(got))
  expect_true(unlist(got)[1] %in% pool_status(pool)$pid)
})

test_that("the wait for daemons ends: with an error naming the option, or at once for no profile", {
  profile <- "shmr_test_never"
  mirai::daemons(url = "tcp://127.0.0.1:0", .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile), add = TRUE)
  old <- options(shmr.daemon_wait = 1)
  on.exit(options(old), add = TRUE)
  expect_error(suppressMessages(pool_create(backend = "mirai", compute = profile)),
               "no mirai daemon connected to compute profile \"shmr_test_never\" within 1 s.*shmr.daemon_wait")
  expect_error(pool_create(backend = "mirai", compute = "shmr_no_such_profile"),
               "none are set up for it")
  options(shmr.daemon_wait = "soon")
  expect_error(pool_create(backend = "mirai", compute = profile),
               "`shmr.daemon_wait` must be one number of seconds")
})

test_that("without n or compute, a pool waits for the daemons of mirai's default profile", {
  # Before, it found none connected and started daemons of its own on this
  # host, leaving those the scheduler was starting unused.
  mirai::daemons(url = "tcp://127.0.0.1:0")
  on.exit(mirai::daemons(0), add = TRUE)
  mirai::launch_remote(1L, remote = late_launcher(2))
  expect_message(pool <- pool_create(backend = "mirai"), "Waiting")
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  expect_true(pool$borrowed)
  expect_identical(pool$profile, "default")
  expect_identical(nrow(pool_status(pool)), 1L)
  expect_identical(unlist(pool_lapply(1:3, function(i) i * 2L, pool = pool)), c(2L, 4L, 6L))
})

test_that("a mirai pool whose daemons fail its init stops, with their reason", {
  # Such daemons were left out of the pool without a word; a pool of none
  # then failed its first map with "NA/NaN argument".
  expect_error(pool_create(2, backend = "mirai", init = function() stop("no licence here")),
               "2 of the 2 daemons .* could not be set up for the pool .*: no licence here",
               class = "shmr_worker_error")
})

test_that("a daemon that joins during a call and finds shmr only through the pool reads its task again", {
  # mirai reads a task's arguments before the pool's runner puts the
  # caller's libraries on the daemon's path: such a daemon read the shared
  # objects of its first task as empty vectors (R's fallback for a class
  # whose package it cannot load), and its first element was silently wrong.
  shmr_lib <- dirname(system.file(package = "shmr"))
  skip_if(identical(shmr_lib, dirname(system.file(package = "mirai"))),
          "shmr is in the library of mirai here")
  own_libs <- setdiff(.libPaths(), shmr_lib)
  profile <- "shmr_test_late_libs"
  mirai::daemons(url = "tcp://127.0.0.1:0", .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile), add = TRUE)
  mirai::launch_local(1L, .compute = profile)
  expect_identical(wait_connections(profile, 1L), 1L)
  pool <- pool_create(backend = "mirai", compute = profile)
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  x <- share(as.numeric(1:1e5))
  on.exit(close(x), add = TRUE, after = FALSE)
  libs <- c(R_LIBS = paste(own_libs, collapse = ":"), R_LIBS_USER = "/nonexistent")
  mirai::launch_remote(1L, remote = late_launcher(1, env = libs), .compute = profile)
  got <- do.call(rbind, pool_lapply(1:40, function(i, x) {
    Sys.sleep(0.2)
    c(pid = Sys.getpid(), sum = sum(x), length = length(x))
  }, x = x, pool = pool, chunk_size = 1L))
  # The late daemon took part, and read x whole every time.
  expect_length(unique(got[, "pid"]), 2L)
  expect_identical(unique(got[, "length"]), 1e5)
  expect_identical(unique(got[, "sum"]), sum(x))
})

# A package in a library of its own whose exported scaler(k) returns a
# closure that calls a helper of its namespace.
install_scaler_package <- function(name) {
  install_test_package(name, "Makes Closures", "scaler", c(
    "helper <- function(x) sum(x)",
    "scaler <- function(k) function(x) k * helper(x)"))
}

test_that("a daemon that joins during a call and finds a package only through the pool reads its task again", {
  # It has shmr in its own libraries, so it read the task's shared objects
  # whole; but a closure of the pool's package (in a library only the caller
  # names) came with the global environment in place of its namespace, R's
  # fallback with a warning on the daemon only: "could not find function
  # \"helper\"", or another helper of that name, for its first element.
  skip_on_cran()
  lib <- install_scaler_package("shmrScaler")
  on.exit(unlink(lib, recursive = TRUE), add = TRUE)
  on.exit(unloadNamespace("shmrScaler"), add = TRUE, after = FALSE)
  withr::local_libpaths(lib, action = "prefix")
  profile <- "shmr_test_late_package"
  mirai::daemons(url = "tcp://127.0.0.1:0", .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile), add = TRUE, after = FALSE)
  mirai::launch_local(1L, .compute = profile)
  expect_identical(wait_connections(profile, 1L), 1L)
  pool <- pool_create(backend = "mirai", compute = profile, packages = "shmrScaler")
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  x <- share(as.numeric(1:1e4))
  on.exit(close(x), add = TRUE, after = FALSE)
  # Not written pkg::fun: R CMD check would count the package, made here, as
  # an undeclared dependency of the tests.
  triple <- getExportedValue("shmrScaler", "scaler")(3)
  # The daemon's own libraries are those this process started with.
  own_libs <- setdiff(.libPaths(), lib)
  libs <- c(R_LIBS = paste(own_libs, collapse = ":"), R_LIBS_USER = "/nonexistent")
  mirai::launch_remote(1L, remote = late_launcher(1, env = libs), .compute = profile)
  got <- do.call(rbind, pool_lapply(1:40, function(i, g, x) {
    Sys.sleep(0.2)
    c(pid = Sys.getpid(), value = g(x))
  }, g = triple, x = x, pool = pool, chunk_size = 1L))
  expect_length(unique(got[, "pid"]), 2L)
  expect_identical(unique(got[, "value"]), 3 * sum(x))
  # pool_status() counts the elements the newcomer computed before the pool
  # knew it (it showed 0 for them).
  status <- pool_status(pool)
  expect_identical(sort(status$pid), sort(as.integer(unique(got[, "pid"]))))
  expect_identical(sum(status$tasks_done), 40L)
})
