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
