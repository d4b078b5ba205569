# Several machines, shown on simulated hosts (helper-hosts.R): two hosts
# beside the owner's, two mirai daemons on each and one on the owner's host,
# the owner's daemons' URL on 127.0.0.2. Each requirement of "shmr beyond
# one machine" has its test here; the last ones repeat the main checks over
# tls+tcp:// and check that nothing is left behind.

skip_without_sim_hosts()

mib <- 1024^2
# A 200 MB data frame, as the requirements say (two double columns).
big_rows <- 12.5e6

cluster <- sim_cluster(c("simB", "simC"), per_host = 2L, local = 1L,
                       envir = testthat::teardown_env())
withr::defer(options(shmr.remote = NULL, shmr.remote_url = NULL), testthat::teardown_env())
sim_hosts <- vapply(cluster$hosts, function(h) h$name, "")
owner_host <- Sys.info()[["nodename"]]

# Files whose name starts with `prefix` in the host's /dev/shm (all files,
# hidden ones too).
shm_files <- function(host, pattern = "shmr") {
  files <- sim_host_run(cluster$hosts[[host]], "ls -A /dev/shm")
  grep(pattern, files, value = TRUE)
}

# Remote mode for mirai_map() and everywhere(): on for this process, with the
# region server on the daemons' interface.
local_remote_mode <- function(envir = parent.frame()) {
  old <- options(shmr.remote = TRUE, shmr.remote_url = sprintf("tcp://%s:0", sim_owner_address))
  withr::defer(options(old), envir)
}

# `f` without its enclosing environment: a task carries only its arguments
# (a test's environment holds closed objects, which cannot be sent).
detached <- function(f) {
  environment(f) <- globalenv()
  f
}

# Runs R code `code` in a fresh R process of `host` (not a daemon), after
# the R code `setup`, with `d` the object serialized in `stream`; returns the
# lines it prints (its warnings among them).
unserialize_on_host <- function(host, stream, code, setup = "") {
  hex <- paste(format(as.hexmode(as.integer(stream)), width = 2), collapse = "")
  sim_host_r(host, paste0(
    setup, "; h <- '", hex, "'; ",
    "s <- as.raw(strtoi(substring(h, seq(1, nchar(h), 2), seq(2, nchar(h), 2)), 16L)); ",
    "d <- unserialize(s); ", code))
}

served <- function(host) {
  s <- remote_status()$served
  if (is.null(s)) return(0)
  sum(s$bytes[startsWith(s$host, paste0(host, ":"))])
}

# Each daemon's own private memory (Anonymous in smaps_rollup) now, after a
# garbage collection, kept in an environment variable (daemons reset options
# and globals after each task).
mark_memory <- function() {
  sim_on_each(cluster, function() {
    gc()
    Sys.setenv(SHMR_TEST_BASE = shmr:::process_memory()[["anonymous"]])
  })
}

# Each daemon's growth of private memory since mark_memory(), by "host pid".
memory_growth <- function() {
  got <- sim_on_each(cluster, function() {
    gc()
    shmr:::process_memory()[["anonymous"]] - as.numeric(Sys.getenv("SHMR_TEST_BASE"))
  })
  stats::setNames(vapply(got, `[[`, 0, "value"), vapply(got, function(g) paste(g$host, g$pid), ""))
}

big <- share(data.frame(x = rnorm(big_rows), y = runif(big_rows)))
big_size <- shared_info(big)$size
big_name <- shared_name(big)
expected_x <- sum(big$x)

test_that("mirai_map() over a shared 200 MB data frame: one fetch per host, flat memory", {
  local_remote_mode()
  # The region server is started, the object exported, and the owner's
  # side of mirai and the workers' code warmed up (the same task over a
  # small shared data frame: a first task loads code, a few MB whatever
  # the object's size) before memory is measured.
  task <- detached(function(i, d, name) {
    s <- sum(d$x)
    Sys.sleep(0.2)
    regions <- shmr::shared_regions()
    mine <- regions[regions$name == name, ]
    list(host = Sys.info()[["nodename"]], pid = Sys.getpid(), sum = s, rows = nrow(d),
         zero_copy = shmr::is_shared(d$x),
         growth = { gc(); shmr:::process_memory()[["anonymous"]] - as.numeric(Sys.getenv("SHMR_TEST_BASE")) },
         replica = mine$replica, origin = mine$origin, keeper = mine$creator_pid,
         host_id = mine$host)
  })
  # Large enough that a host's second worker waits for the first one's copy,
  # as it will for the big one.
  small <- share(data.frame(x = rnorm(2e6), y = runif(2e6)))
  mark_memory()
  invisible(mirai::mirai_map(1:20, task, .args = list(d = small, name = shared_name(small)),
                             .compute = cluster$profile)[])
  close(small)
  invisible(serialize(big, NULL))
  mark_memory()
  gc()
  owner_before <- shmr:::process_memory()[["anonymous"]]
  server_before <- shmr:::process_memory(remote_status()$pid)[["anonymous"]]
  served_before <- vapply(sim_hosts, served, 0)
  names(served_before) <- sim_hosts
  res <- mirai::mirai_map(1:20, task, .args = list(d = big, name = big_name),
                          .compute = cluster$profile)[]
  gc()
  owner_growth <- shmr:::process_memory()[["anonymous"]] - owner_before
  server_growth <- shmr:::process_memory(remote_status()$pid)[["anonymous"]] - server_before
  failed <- Filter(Negate(is.list), res)
  expect_length(failed, 0L)
  if (length(failed)) {
    stop("tasks failed: ", paste(unique(vapply(failed, function(f) paste(f, collapse = " "), "")),
                                 collapse = "; "))
  }
  hosts <- vapply(res, `[[`, "", "host")
  expect_true(all(sim_hosts %in% hosts))
  for (r in res) {
    expect_equal(r$sum, expected_x)
    expect_identical(r$rows, as.integer(big_rows))
    expect_true(r$zero_copy)
  }
  for (host in sim_hosts) {
    on_host <- res[hosts == host]
    # The copy there is a replica of the owner's region, kept by one of
    # the host's own daemons.
    expect_true(all(vapply(on_host, `[[`, NA, "replica")))
    expect_identical(unique(vapply(on_host, `[[`, "", "origin")), shmr:::host_identity())
    expect_true(startsWith(on_host[[1]]$host_id, paste0(host, ":")))
    keeper <- unique(vapply(on_host, `[[`, 0L, "keeper"))
    expect_length(keeper, 1L)
    # Crossed the network once for the host, not once per worker.
    fetched <- served(host) - served_before[[host]]
    expect_gte(fetched, big_size)
    expect_lte(fetched, 1.05 * big_size)
    # Only the fetching worker grew, and by less than 64 MB; the others by
    # less than 1% of the object.
    for (r in on_host) {
      limit <- if (r$pid == keeper) 64 * mib else 0.01 * big_size
      if (!memory_is_sanitized())
        expect_lt(r$growth, limit, label = sprintf("growth of worker %d on %s", r$pid, host))
    }
  }
  # The owner was busy waiting for results; no column of the object passed
  # through it (each is half of it; the owner's growth is R's own
  # bookkeeping of the call, 1 to 21 MB on this machine, whatever the
  # object's size), and its region server, which sent the object to both
  # hosts, did not grow with it either.
  if (!memory_is_sanitized()) {
    expect_lt(owner_growth, 0.25 * big_size)
    expect_lt(server_growth, 0.05 * big_size)
  }
  # On the owner's host the region itself is mapped, nothing is fetched.
  expect_identical(served(owner_host), 0)
})

# TRUE when a connection to the nanonext listener at `url` succeeds.
reachable <- function(url) {
  sock <- nanonext::socket("req")
  on.exit(close(sock))
  nanonext::dial(sock, url = url, autostart = TRUE)
  deadline <- Sys.time() + 2
  while (nanonext::stat(sock, "pipes") == 0 && Sys.time() < deadline) Sys.sleep(0.05)
  nanonext::stat(sock, "pipes") > 0
}

test_that("hosts share a boot id but not a host identity", {
  ids <- sim_on_each(cluster, function() {
    c(readLines("/proc/sys/kernel/random/boot_id"), shmr:::host_identity())
  })
  boot <- vapply(ids, function(i) i$value[1], "")
  identity <- vapply(ids, function(i) i$value[2], "")
  host <- vapply(ids, `[[`, "", "host")
  expect_identical(unique(boot), readLines("/proc/sys/kernel/random/boot_id"))
  # One identity per host: its name and the device of its /dev/shm.
  expect_length(unique(identity), 3L)
  for (h in unique(host)) expect_length(unique(identity[host == h]), 1L)
  expect_identical(unique(identity[host == owner_host]), shmr:::host_identity())
})

test_that("a pool over the connected daemons, local and remote (remote mode on by itself)", {
  # No option at all: the pool starts the region server on the interface of
  # its daemons' URL.
  options(shmr.remote = FALSE, shmr.remote_url = NULL)
  shmr:::stop_region_server()
  pool <- pool_create(backend = "mirai", compute = cluster$profile)
  on.exit(pool_stop(pool))
  status <- pool_status(pool)
  expect_identical(nrow(status), 5L)
  expect_setequal(sub(":.*$", "", status$host), c(sim_hosts, owner_host))
  expect_identical(as.vector(table(sub(":.*$", "", status$host))[sim_hosts]), c(2L, 2L))
  before <- served(sim_hosts[1]) + served(sim_hosts[2])
  task <- detached(function(i, d) {
    Sys.sleep(0.05)
    c(mean(d$x[seq(i, nrow(d), by = 1000)]), sum(d$x))
  })
  # A worker's first tasks of a pool load code and set it up (a few MB,
  # whatever the size of the object): memory is measured over a second
  # round.
  invisible(pool_lapply(1:40, task, d = big, pool = pool))
  mark_memory()
  res <- pool_lapply(1:40, task, d = big, pool = pool)
  expect_equal(vapply(res, `[`, 0, 2), rep(expected_x, 40))
  expect_equal(vapply(res, `[`, 0, 1), vapply(1:40, function(i) mean(big$x[seq(i, big_rows, by = 1000)]), 0))
  # The copies made for mirai_map() served the pool too: nothing fetched again.
  expect_identical(served(sim_hosts[1]) + served(sim_hosts[2]), before)
  after <- pool_status(pool)
  expect_true(all(after$tasks_done >= 0))
  expect_gt(sum(after$tasks_done[sub(":.*$", "", after$host) %in% sim_hosts]), 0)
  expect_true(all(after$status == "ok"))
  # Private memory of every worker: no copy of the 200 MB object anywhere,
  # nor of a tenth of one column. (R's heap varies by about 2 MB between
  # rounds on a busy machine.)
  growth <- memory_growth()
  if (!memory_is_sanitized())
    for (w in names(growth)) expect_lt(growth[[w]], 0.05 * big_size, label = w)
  # A new object is fetched through the pool's own remote mode (the option
  # is off), once per host.
  v <- share(rnorm(2e6))
  on.exit(close(v), add = TRUE)
  served_before <- stats::setNames(vapply(sim_hosts, served, 0), sim_hosts)
  got <- pool_lapply(1:20, function(i, v) { Sys.sleep(0.05); sum(v) }, v = v, pool = pool)
  expect_equal(unlist(got), rep(sum(v), 20))
  for (h in sim_hosts) {
    fetched <- served(h) - served_before[[h]]
    expect_gte(fetched, shared_info(v)$size)
    expect_lte(fetched, 1.05 * shared_info(v)$size)
  }
  url <- remote_status()$url
  expect_match(url, "^tcp://127\\.0\\.0\\.2:[0-9]+$")
  # Bound to that interface only: the same port on 127.0.0.1 is closed, as
  # a wrong address would be between machines.
  expect_true(reachable(url))
  expect_false(reachable(sub("127.0.0.2", "127.0.0.1", url, fixed = TRUE)))
})

test_that("a missing region never kills a worker: gone, refused, unreachable", {
  before <- sim_connections(cluster)
  local_remote_mode()
  # Gone: closed by its owner before a host fetched it.
  gone <- share(rnorm(1000))
  gone_stream <- serialize(gone, NULL)
  close(gone)
  # Refused: a token that is not the region's.
  kept <- share(rnorm(1000))
  stream <- serialize(kept, NULL)
  origin <- shmr:::remote_state$exports[[shared_name(kept)]]$origins[[1]]
  fields <- strsplit(origin, " ", fixed = TRUE)[[1]]
  refused <- replace_serialized_origin(stream, origin, paste(
    replace(fields, 2, paste(rev(strsplit(fields[2], "")[[1]]), collapse = "")), collapse = " "))
  # Unreachable: an origin on an address where no server listens.
  unreachable <- replace_serialized_origin(stream, origin, paste(
    replace(fields, 1, sprintf("tcp://%s:9", sim_owner_address)), collapse = " "))
  streams <- list(gone = gone_stream, refused = refused, unreachable = unreachable)
  expected <- c(gone = "gone: the object was closed", refused = "refused: no such region",
                unreachable = "refused the connection")
  for (case in names(streams)) {
    # As a task's argument (what a daemon unserializes before the task
    # runs), and unserialized by the task itself: the same code.
    argument <- suppressWarnings(unserialize(streams[[case]]))
    got <- sim_on_each(cluster, function(d, stream) {
      inside <- suppressWarnings(unserialize(stream))
      c(tryCatch({ sum(inside); "ok" }, error = function(e) c(class(e)[1], e$reason)),
        tryCatch({ sum(d); "ok" }, error = function(e) class(e)[1]))
    }, list(d = if (case == "gone") argument, stream = streams[[case]]))
    remote <- Filter(function(g) g$host %in% sim_hosts, got)
    expect_length(remote, 4L)
    for (g in remote) {
      expect_identical(g$value[1], "shmr_region_unavailable", label = case)
      expect_match(g$value[2], expected[[case]], label = case)
      if (case == "gone") expect_identical(g$value[3], "shmr_region_unavailable")
    }
  }
  # A task that uses such an object fails with that error; the daemons stay.
  m <- mirai::mirai(sum(d), d = suppressWarnings(unserialize(gone_stream)), .compute = cluster$profile)
  expect_true(mirai::is_mirai_error(mirai::call_mirai(m)$data))
  expect_identical(sim_connections(cluster), before)
  close(kept)
})

test_that("timeouts: a black-holed origin and a held fetch lock fail within the timeout", {
  local_remote_mode()
  sim_on_each(cluster, function() Sys.setenv(SHMR_REMOTE_TIMEOUT = "3"))
  on.exit(sim_on_each(cluster, function() Sys.unsetenv("SHMR_REMOTE_TIMEOUT")), add = TRUE)
  # A listener that accepts connections and never answers.
  hole <- callr::r_bg(function(url) {
    s <- nanonext::socket("rep", listen = url)
    cat("listening\n")
    Sys.sleep(120)
  }, list(url = sprintf("tcp://%s:%d", "127.0.0.3", 45000 + Sys.getpid() %% 1000)),
  stdout = "|")
  on.exit(hole$kill(), add = TRUE)
  hole$poll_io(30000)
  expect_identical(hole$read_output_lines(), "listening")
  x <- share(rnorm(1000))
  on.exit(close(x), add = TRUE)
  stream <- serialize(x, NULL)
  origin <- shmr:::remote_state$exports[[shared_name(x)]]$origins[[1]]
  fields <- strsplit(origin, " ", fixed = TRUE)[[1]]
  holed <- replace_serialized_origin(stream, origin, paste(
    replace(fields, 1, sprintf("tcp://127.0.0.3:%d", 45000 + Sys.getpid() %% 1000)), collapse = " "))
  got <- sim_on_each(cluster, function(stream) {
    started <- Sys.time()
    d <- suppressWarnings(unserialize(stream))
    waited <- as.numeric(Sys.time() - started, units = "secs")
    list(waited = waited, error = tryCatch({ sum(d); "ok" }, error = function(e) e$reason))
  }, list(stream = holed))
  # On each host, the worker that fetches gets no answer in time, and the
  # other one may give up waiting for it first: both within the timeout.
  for (host in sim_hosts) {
    on_host <- Filter(function(g) g$host == host, got)
    errors <- vapply(on_host, function(g) g$value$error, "")
    expect_true(any(grepl("no answer from the region server at tcp://127.0.0.3", errors)),
                label = paste(errors, collapse = "; "))
    expect_true(all(grepl("no answer from the region server|timed out after 3 s waiting", errors)))
    for (g in on_host) {
      expect_gte(g$value$waited, 2.5)
      expect_lt(g$value$waited, 30)
    }
  }
  # A fetch lock held by another process of host B for longer than the
  # timeout: B's workers give up waiting with a clear error.
  y <- share(rnorm(1000))
  on.exit(close(y), add = TRUE)
  lock <- sprintf("/dev/shm/.shmr_lock_%s", shared_name(y))
  # Returns once the lock is held (flock -n fails), not when the holder has
  # merely started: a worker could otherwise take the lock first.
  holder <- sim_host_run(cluster$hosts[[1]], sprintf(paste(
    "touch %s && (flock %s sleep 60 </dev/null >/dev/null 2>&1 & echo $!) &&",
    "while flock -n %s true; do sleep 0.01; done"), lock, lock, lock))
  on.exit(sim_host_run(cluster$hosts[[1]], sprintf("kill %s; rm -f %s", holder, lock)), add = TRUE)
  got <- sim_on_each(cluster, function(d) {
    tryCatch({ sum(d); "ok" }, error = function(e) e$reason)
  }, list(d = y))
  on_b <- Filter(function(g) g$host == sim_hosts[1], got)
  on_c <- Filter(function(g) g$host == sim_hosts[2], got)
  for (g in on_b) expect_match(g$value, "timed out after 3 s waiting for another process")
  for (g in on_c) expect_identical(g$value, "ok")
})

test_that("a region of the same name on another host is an error naming both, never mapped", {
  local_remote_mode()
  name <- sprintf("collide_%d", Sys.getpid())
  sim_host_r(cluster$hosts[[1]], sprintf(
    "library(shmr); invisible(share(c(-1, -1), name = '%s', persist = TRUE))", name))
  on.exit(sim_host_r(cluster$hosts[[1]], sprintf("shmr::remove_shared('%s')", name)), add = TRUE)
  x <- share(c(1, 2, 3), name = name)
  on.exit(close(x), add = TRUE)
  got <- sim_on_each(cluster, function(d) {
    tryCatch(sum(d), error = function(e) e$reason)
  }, list(d = x))
  for (g in got) {
    if (g$host == sim_hosts[1]) {
      expect_match(g$value, sprintf("a region named 'shmr_%s' exists on this host \\(%s:", name, sim_hosts[1]))
      expect_match(g$value, shmr:::host_identity(), fixed = TRUE)
    } else {
      expect_identical(g$value, 6)
    }
  }
})

test_that("writable shares stay on their host; results come back by value from other hosts", {
  pool <- pool_create(backend = "mirai", compute = cluster$profile)
  on.exit(pool_stop(pool))
  w <- share(as.numeric(1:10), readonly = FALSE)
  on.exit(close(w), add = TRUE)
  got <- pool_lapply(1:30, function(i, w) {
    Sys.sleep(0.05)
    list(host = Sys.info()[["nodename"]],
         value = tryCatch(sum(w), error = function(e) c(class(e)[1], e$reason)))
  }, w = w, pool = pool)
  hosts <- vapply(got, `[[`, "", "host")
  for (g in got[hosts %in% sim_hosts]) {
    expect_identical(g$value[1], "shmr_region_unavailable")
    expect_match(g$value[2], "writable share")
  }
  for (g in got[hosts == owner_host]) expect_identical(g$value, 55)
  # Results over the threshold: through shared memory from the owner's host,
  # by value from the others; a share made on another host arrives as data.
  res <- pool_lapply(1:30, function(i) {
    Sys.sleep(0.05)
    v <- as.numeric(seq_len(3e5)) + i
    # Its shared part is the smaller one: the list is handed off whole.
    list(host = Sys.info()[["nodename"]], sum = sum(v), result = v, made = share(v[1:1e5]))
  }, pool = pool)
  for (r in res) {
    expect_equal(sum(r$result), r$sum)
    if (r$host %in% sim_hosts) {
      expect_false(is_shared(r$result))
      expect_false(is_shared(r$made))
      expect_equal(r$made, r$result[1:1e5])
    }
  }
  local <- Filter(function(r) r$host == owner_host, res)
  if (length(local)) expect_true(is_shared(local[[1]]$result))
})

# A pool over the cluster's daemons (which it did not start) that has made
# every host copy x for a map.
pool_with_copies_of <- function(x) {
  pool <- pool_create(backend = "mirai", compute = cluster$profile)
  got <- pool_lapply(1:20, function(i, x) { Sys.sleep(0.05); sum(x) }, x = x, pool = pool)
  expect_equal(unlist(got), rep(sum(x), 20))
  for (host in names(cluster$hosts)) expect_true(shared_name(x) %in% shm_files(host), label = host)
  pool
}

# Waits up to `timeout` seconds for every host's copy of region `name` to go.
expect_copies_released <- function(name, timeout = 30) {
  deadline <- Sys.time() + timeout
  repeat {
    left <- unlist(lapply(names(cluster$hosts), function(h) grep(name, shm_files(h), value = TRUE)))
    if (!length(left) || Sys.time() > deadline) break
    Sys.sleep(0.2)
  }
  expect_length(left, 0L)
}

test_that("copies end when the owner closes the object (the pool releases them)", {
  x <- share(rnorm(1e6))
  name <- shared_name(x)
  pool <- pool_with_copies_of(x)
  on.exit(pool_stop(pool))
  close(x)
  expect_copies_released(name)
})

test_that("copies end when the owner closes a deep share, or removes a region with remove_shared()", {
  deep <- share(list(big = rnorm(1e6), other = rnorm(5e5), small = 1:3), deep = TRUE)
  deep_regions <- shared_info(deep)$regions
  expect_length(deep_regions, 2L)
  plain <- share(rnorm(1e6))
  plain_name <- shared_name(plain)
  on.exit(close(plain))
  pool <- pool_create(backend = "mirai", compute = cluster$profile)
  on.exit(pool_stop(pool), add = TRUE)
  got <- pool_lapply(1:20, detached(function(i, d, p) {
    Sys.sleep(0.05)
    sum(d$big) + sum(d$other) + sum(p)
  }), d = deep, p = plain, pool = pool)
  expect_equal(unlist(got), rep(sum(deep$big) + sum(deep$other) + sum(plain), 20))
  for (host in names(cluster$hosts)) {
    expect_true(all(c(deep_regions, plain_name) %in% shm_files(host)), label = host)
  }
  # Before, a deep share (a plain list) gave close() no region to release,
  # and remove_shared() released none: the copies stayed until their
  # keepers exited, and a loop of shares filled the hosts' /dev/shm.
  close(deep)
  for (region in deep_regions) expect_copies_released(region, timeout = 10)
  remove_shared(plain_name)
  expect_copies_released(plain_name, timeout = 10)
  expect_false(any(c(deep_regions, plain_name) %in% remote_status()$exported))
  # The pool goes on serving new objects.
  y <- share(rnorm(1e5))
  on.exit(close(y), add = TRUE)
  again <- pool_lapply(1:10, detached(function(i, y) sum(y)), y = y, pool = pool)
  expect_equal(unlist(again), rep(sum(y), 10))
})

test_that("copies of objects the owner dropped without close() go at the pool's next call", {
  pool <- pool_create(backend = "mirai", compute = cluster$profile)
  on.exit(pool_stop(pool))
  task <- detached(function(i, x) {
    Sys.sleep(0.05)
    sum(x)
  })
  dropped <- character()
  for (round in 1:3) {
    x <- share(rnorm(1e6) + round)
    dropped <- c(dropped, shared_name(x))
    got <- pool_lapply(1:20, task, x = x, pool = pool)
    expect_equal(unlist(got), rep(sum(x), 20))
    for (host in names(cluster$hosts)) expect_true(shared_name(x) %in% shm_files(host), label = host)
    rm(x)
  }
  gc()
  expect_false(any(dropped %in% shared_regions()$name))
  # Before, each host kept a copy of every object the owner had dropped
  # until the copy's keeper exited: a loop of shares without close() filled
  # the hosts' /dev/shm while the owner's host held only the live object.
  kept <- share(rnorm(10))
  on.exit(close(kept), add = TRUE)
  again <- pool_lapply(1:4, detached(function(i, k) sum(k)), k = kept, pool = pool)
  expect_equal(unlist(again), rep(sum(kept), 4))
  for (name in dropped) expect_copies_released(name, timeout = 10)
  expect_false(any(dropped %in% remote_status()$exported))
})

test_that("a host whose /dev/shm has no room for a copy keeps one copy on disk for all its workers", {
  # A container's /dev/shm is often 64 MB; the object is 100 MB.
  small <- sim_cluster("simS", per_host = 2L, local = 0L, shm_size = "64m")
  small_host <- small$hosts$simS
  local_remote_mode()
  x <- share(as.numeric(seq_len(12.5e6)))
  name <- shared_name(x)
  pool <- pool_create(backend = "mirai", compute = small$profile)
  # Before the host's removal, which sim_cluster() set up for this frame.
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  got <- pool_lapply(1:20, detached(function(i, x) {
    Sys.sleep(0.05)
    regions <- shmr::shared_regions()
    copy <- regions[regions$name == shmr::shared_name(x), ]
    list(sum = sum(x), backing = copy$backing, replica = copy$replica, path = copy$path)
  }), x = x, pool = pool)
  expect_equal(vapply(got, `[[`, 0, "sum"), rep(sum(x), 20))
  expect_true(all(vapply(got, `[[`, "", "backing") == "mmap"))
  expect_true(all(vapply(got, `[[`, NA, "replica")))
  # One copy on the host, fetched once: its /dev/shm holds only the locator.
  path <- unique(vapply(got, `[[`, "", "path"))
  expect_length(path, 1L)
  expect_true(file.exists(path))
  expect_identical(grep("shmr", sim_host_run(small_host, "ls -A /dev/shm"), value = TRUE), name)
  expect_equal(served(small_host$name), shared_info(x)$size)
  # Closed by its owner, the copy goes, data file and locator.
  close(x)
  deadline <- Sys.time() + 30
  while ((file.exists(path) || name %in% sim_host_run(small_host, "ls -A /dev/shm")) &&
         Sys.time() < deadline) Sys.sleep(0.2)
  expect_false(file.exists(path))
  expect_false(name %in% sim_host_run(small_host, "ls -A /dev/shm"))
})

test_that("a worker whose temporary directory is unusable still copies into /dev/shm, and says why when that is full", {
  small <- sim_cluster("simT", per_host = 1L, local = 0L, shm_size = "64m")
  local_remote_mode()
  fits <- share(rnorm(1e5))
  on.exit(close(fits), add = TRUE)
  too_big <- share(as.numeric(seq_len(12.5e6)))
  on.exit(close(too_big), add = TRUE)
  stream <- serialize(list(fits, too_big), NULL)
  # A file where the session's directory for file-backed regions goes.
  out <- unserialize_on_host(small$hosts$simT, stream,
                             setup = "file.create(file.path(tempdir(), 'shmr'))",
                             paste0("cat(paste('result:', vapply(d, function(v) tryCatch(format(sum(v), ",
                                    "digits = 15), error = conditionMessage), '')), sep = '\\n')"))
  all_out <- paste(out, collapse = "\n")
  out <- sub("^result: ", "", grep("^result: ", out, value = TRUE))
  expect_length(out, 2L)
  # Before, both failed with "`path` must be an existing directory".
  expect_identical(out[1], format(sum(fits), digits = 15), info = all_out)
  expect_match(out[2], paste0("not enough space in /dev/shm.*nor could the copy be kept as a file: ",
                              "'.*/shmr' is not a directory"), info = all_out)
})

test_that("a host whose /dev/shm cannot take even a copy's locator refuses the object before copying it", {
  small <- sim_cluster("simF", per_host = 1L, local = 0L, shm_size = "64m")
  host <- small$hosts$simF
  local_remote_mode()
  # Someone else's file takes the last page.
  sim_host_run(host, "dd if=/dev/zero of=/dev/shm/filler bs=1M 2>/dev/null; true")
  x <- share(as.numeric(seq_len(12.5e6)))
  on.exit(close(x), add = TRUE)
  got <- sim_on_each(small, function(x) {
    list(sum = tryCatch(sum(x), error = conditionMessage),
         files = list.files(file.path(tempdir(), "shmr"), all.files = TRUE, no.. = TRUE))
  }, list(x = x))
  expect_length(got, 1L)
  expect_match(got[[1]]$value$sum, "no room in /dev/shm for a copy .* nor for the locator")
  expect_length(got[[1]]$value$files, 0L)
  # Before, the whole object came over the network first.
  expect_equal(served(host$name), 0)
  expect_identical(grep("shmr", sim_host_run(host, "ls -A /dev/shm"), value = TRUE), character())
  # The daemon stays, and copies the object once there is room.
  sim_host_run(host, "rm /dev/shm/filler")
  again <- sim_on_each(small, function(x) sum(x), list(x = x))
  expect_equal(again[[1]]$value, sum(x))
})

# The process group and the session of process `pid` (fields 5 and 6 of
# /proc/<pid>/stat, counted after the command's name, which may hold spaces).
process_group_and_session <- function(pid) {
  stat <- readLines(sprintf("/proc/%d/stat", pid), warn = FALSE)
  fields <- strsplit(sub("^.*\\) ", "", stat), " ", fixed = TRUE)[[1]]
  as.integer(fields[3:4])
}

test_that("the region server outlives Ctrl-C in its owner's terminal, and still ends with the owner", {
  skip_without_callr()
  # An owner in a process group of its own (as a shell with job control
  # runs a command), so that its group can be interrupted as Ctrl-C does
  # without reaching this process. It catches its interrupts, as a user
  # who stops waiting for results does, and goes on.
  report <- tempfile("owner-")
  stream_file <- tempfile("stream-")
  script <- tempfile("owner-", fileext = ".R")
  output <- tempfile("owner-", fileext = ".out")
  writeLines(c(
    sprintf(".libPaths(%s)", paste(deparse(.libPaths()), collapse = "")),
    "library(shmr)",
    sprintf("options(shmr.remote = TRUE, shmr.remote_url = 'tcp://%s:0')", sim_owner_address),
    "x <- share(as.numeric(1:1e6))",
    sprintf("writeBin(serialize(x, NULL), %s)", deparse(stream_file)),
    "interrupts <- 0",
    # Ready once it catches interrupts: one sooner would end it.
    "repeat tryCatch({",
    sprintf("  if (!file.exists('%s')) {", report),
    sprintf("    writeLines(c(Sys.getpid(), remote_status()$pid, shared_name(x), tempdir()), '%s.tmp')",
            report),
    sprintf("    file.rename('%s.tmp', '%s')", report, report),
    "  }",
    "  Sys.sleep(300)",
    "}, interrupt = function(i) {",
    "  interrupts <<- interrupts + 1",
    sprintf("  writeLines(as.character(interrupts), '%s.interrupts')", report),
    "})"
  ), script)
  owner_process <- processx::process$new("setsid", c("-w", file.path(R.home("bin"), "Rscript"),
                                                     "--vanilla", script),
                                         stdout = output, stderr = "2>&1", cleanup = TRUE)
  on.exit(owner_process$kill(), add = TRUE)
  expect_true(wait_for_file(report, owner_process), label = paste(readLines(output), collapse = "\n"))
  started <- readLines(report)
  owner <- as.integer(started[1])
  server <- as.integer(started[2])
  on.exit({
    tools::pskill(owner, tools::SIGKILL)
    remove_shared(started[3])
    unlink(c(started[4], script, output, report, stream_file, paste0(report, ".interrupts")),
           recursive = TRUE)
  }, add = TRUE)
  group <- process_group_and_session(owner)[1]
  expect_false(identical(group, process_group_and_session(Sys.getpid())[1]))
  # Ctrl-C: SIGINT to the owner's whole foreground process group. Before,
  # the server was in that group, and R halted on the interrupt.
  if (!identical(group, process_group_and_session(Sys.getpid())[1])) {
    system2("bash", c("-c", shQuote(sprintf("kill -INT -- -%d", group))))
  }
  deadline <- Sys.time() + 10
  while (!file.exists(paste0(report, ".interrupts")) && Sys.time() < deadline) Sys.sleep(0.05)
  expect_true(file.exists(paste0(report, ".interrupts")),
              label = paste(c("the owner caught the interrupt", readLines(output)), collapse = "\n"))
  # An interrupt sent to the server itself does not end it either.
  for (i in 1:3) {
    tools::pskill(server, tools::SIGINT)
    Sys.sleep(0.3)
  }
  Sys.sleep(1)
  expect_true(shmr:::process_alive(server))
  expect_true(shmr:::process_alive(owner))
  # A worker of another host still fetches the object served before.
  stream <- readBin(stream_file, "raw", file.size(stream_file))
  out <- unserialize_on_host(cluster$hosts[[1]], stream, setup = "library(shmr)",
                             "cat(tryCatch(sprintf('%.0f', sum(d)), error = conditionMessage))")
  expect_identical(utils::tail(out, 1), sprintf("%.0f", sum(as.numeric(1:1e6))))
  # Out of the owner's session, its lifetime still follows the owner's.
  tools::pskill(owner, tools::SIGKILL)
  deadline <- Sys.time() + 20
  while (shmr:::process_alive(server) && Sys.time() < deadline) Sys.sleep(0.1)
  expect_false(shmr:::process_alive(server))
})

test_that("pool_stop() of a pool over daemons it did not start takes this owner's copies with it", {
  x <- share(rnorm(1e6))
  on.exit(close(x))
  pool <- pool_with_copies_of(x)
  pool_stop(pool)
  expect_copies_released(shared_name(x))
  # The daemons are not the pool's: they still run, and still reach x.
  old <- options(shmr.remote = TRUE)
  on.exit(options(old), add = TRUE)
  again <- mirai::mirai_map(1:4, function(i, x) sum(x), .args = list(x = x),
                            .compute = cluster$profile)[]
  expect_equal(unlist(again), rep(sum(x), 4))
})

test_that("a name shared again after close() reaches the hosts that copied the earlier region", {
  local_remote_mode()
  sum_everywhere <- function(d) {
    calls <- mirai::everywhere(sum(d), .args = list(d = d), .compute = cluster$profile)
    unlist(lapply(mirai::collect_mirai(calls), function(v) if (is.numeric(v)) v else NA))
  }
  first <- share(as.numeric(1:1e5), name = "daily_again")
  expect_equal(sum_everywhere(first), rep(sum(first), cluster$expected))
  close(first)
  # Plain mirai: the daemons still keep their copies of the closed region.
  again <- share(as.numeric(1:1e5) * 2, name = "daily_again")
  on.exit(close(again))
  expect_equal(sum_everywhere(again), rep(sum(again), cluster$expected))
  # One copy per host, of the new region.
  created_at <- function(regions) {
    format(as.numeric(regions$created[regions$name == "shmr_daily_again"]), digits = 15)
  }
  for (host in names(cluster$hosts)) {
    expect_identical(shm_files(host, "daily_again"), "shmr_daily_again")
    copy <- sim_host_r(cluster$hosts[[host]], paste0(
      "r <- shmr::shared_regions(); ",
      "cat(format(as.numeric(r$created[r$name == 'shmr_daily_again']), digits = 15))"))
    expect_identical(copy, created_at(shared_regions()))
  }
})

test_that("the owner's chunk size and the workers' need not agree", {
  local_remote_mode()
  # The region server takes its chunk size when it starts.
  shmr:::stop_region_server()
  old <- options(shmr.remote_chunk = 1e5)
  on.exit({
    options(old)
    shmr:::stop_region_server()
  }, add = TRUE)
  # Workers asking for more than the server sends at once (a huge value is
  # capped at 256 MiB), and for a fractional size. Before, every fetch of
  # an object over one chunk failed: "bad chunk" or "a short chunk".
  sim_on_each(cluster, function() Sys.setenv(SHMR_REMOTE_CHUNK = "1e12"))
  on.exit(sim_on_each(cluster, function() Sys.unsetenv("SHMR_REMOTE_CHUNK")), add = TRUE)
  x <- share(rnorm(1e6))
  on.exit(close(x), add = TRUE)
  sums <- mirai::collect_mirai(mirai::everywhere(sum(d), .args = list(d = x), .compute = cluster$profile))
  expect_true(all(vapply(sums, function(v) isTRUE(all.equal(v, sum(x))), NA)))
  sim_on_each(cluster, function() Sys.setenv(SHMR_REMOTE_CHUNK = "70000.5"))
  y <- share(rnorm(1e6))
  on.exit(close(y), add = TRUE)
  sums <- mirai::collect_mirai(mirai::everywhere(sum(d), .args = list(d = y), .compute = cluster$profile))
  expect_true(all(vapply(sums, function(v) isTRUE(all.equal(v, sum(y))), NA)))
  # Once per host for each object (its region: the data and a header).
  for (host in sim_hosts) expect_true(served(host) >= 16e6 && served(host) < 24e6, label = host)
})

test_that("a fetcher keeps two requests in flight and puts each chunk where it belongs", {
  local_remote_mode()
  # A stand-in for the region server, on two contexts of its socket so that
  # it can hold a request unanswered and see whether the next one comes.
  # It sends at most `piece` bytes per reply, less than the fetcher asks.
  piece <- 300000
  url <- sprintf("tcp://127.0.0.3:%d", 46000 + Sys.getpid() %% 1000)
  x <- share(as.numeric(seq_len(3e5)) / 7)
  on.exit(close(x), add = TRUE)
  stream <- serialize(x, NULL)
  origin <- shmr:::remote_state$exports[[shared_name(x)]]$origins[[1]]
  fields <- strsplit(origin, " ", fixed = TRUE)[[1]]
  size <- as.numeric(fields[5])
  server <- callr::r_bg(function(url, name, piece, size) {
    handle <- .Call(shmr:::shmr_serve_open, name)
    s <- nanonext::socket("rep", listen = url)
    ctx <- list(nanonext::context(s), nanonext::context(s))
    cat("listening\n")
    asked <- list()
    pending <- list(nanonext::recv(ctx[[1]], mode = "string", block = 60000), NULL)
    # The first request is not answered until a second one has come.
    pending[[2]] <- nanonext::recv(ctx[[2]], mode = "string", block = 10000)
    ahead <- is.character(pending[[2]])
    # Until it has sent as many bytes as the region has, each context in
    # turn answers its request and takes the next one.
    i <- 1L
    sent <- 0
    while (sent < size && is.character(pending[[i]])) {
      w <- strsplit(pending[[i]], " ", fixed = TRUE)[[1]]
      offset <- as.numeric(w[4])
      n <- as.numeric(w[5])
      asked[[length(asked) + 1L]] <- c(offset = offset, n = n)
      nanonext::send(ctx[[i]], .Call(shmr:::shmr_serve_chunk, handle, offset, min(n, piece), NULL),
                     mode = "raw", block = 5000)
      sent <- sent + min(n, piece)
      # No request is waited for when the one the other context holds asks
      # for the last bytes.
      other <- pending[[3L - i]]
      coming <- if (is.character(other)) min(as.numeric(strsplit(other, " ")[[1]][5]), piece) else 0
      pending[i] <- list(if (sent + coming < size) {
        nanonext::recv(ctx[[i]], mode = "string", block = 20000)
      })
      i <- 3L - i
    }
    list(ahead = ahead, asked = do.call(rbind, asked))
  }, list(url = url, name = shared_name(x), piece = piece, size = size))
  on.exit(server$kill(), add = TRUE)
  server$poll_io(30000)
  expect_identical(server$read_output_lines(), "listening")
  moved <- replace_serialized_origin(stream, origin, paste(replace(fields, 1, url), collapse = " "))
  out <- unserialize_on_host(cluster$hosts[[1]], moved, setup = "Sys.setenv(SHMR_REMOTE_CHUNK = '1e6')",
                             paste0("r <- shmr::shared_regions(); ",
                                    "cat(identical(d, as.numeric(seq_len(3e5)) / 7), shmr::is_shared(d), ",
                                    "r$replica[r$name == shmr::shared_name(d)], sep = '\\n')"))
  expect_identical(out, c("TRUE", "TRUE", "TRUE"))
  server$wait(30000)
  got <- server$get_result()
  expect_true(got$ahead)
  asked <- got$asked
  # Every byte asked for once, in what the server sent: the rest of each
  # short reply asked again, in pieces no larger than the server sends.
  sent <- pmin(asked[, "n"], piece)
  expect_equal(sum(sent), size)
  ranges <- cbind(asked[, "offset"], asked[, "offset"] + sent)[order(asked[, "offset"]), ]
  expect_identical(ranges[1, 1], 0)
  expect_equal(ranges[-1, 1], ranges[-nrow(ranges), 2])
  expect_equal(unname(asked[1:2, "n"]), c(1e6, 1e6))
  expect_true(all(asked[-(1:2), "n"] <= piece))
})

test_that("a copy that outlasts the timeout says so, and the daemon stays", {
  local_remote_mode()
  # Small chunks: many requests, so the copy is caught midway below.
  sim_on_each(cluster, function() Sys.setenv(SHMR_REMOTE_CHUNK = "4096", SHMR_REMOTE_TIMEOUT = "2"))
  on.exit(sim_on_each(cluster, function() Sys.unsetenv(c("SHMR_REMOTE_CHUNK", "SHMR_REMOTE_TIMEOUT"))),
          add = TRUE)
  x <- share(rnorm(8e6))
  on.exit(close(x), add = TRUE)
  calls <- mirai::everywhere(
    tryCatch(sum(d), error = function(e) conditionMessage(e)), .args = list(d = x),
    .compute = cluster$profile)
  # Once part of the copy has reached every host, the region server is
  # paused past the workers' timeout, so no copy can complete, however fast
  # the machine (an unpaused copy finished within the timeout on a CI run).
  # A second chunk served means the first one arrived.
  deadline <- Sys.time() + 60
  while (!all(vapply(sim_hosts, served, 0) > 4096) && Sys.time() < deadline) Sys.sleep(0.005)
  before <- vapply(sim_hosts, served, 0)
  server <- remote_status()$pid
  tools::pskill(server, tools::SIGSTOP)
  Sys.sleep(3)
  tools::pskill(server, tools::SIGCONT)
  got <- mirai::collect_mirai(calls)
  expect_true(all(before > 4096 & before < 64e6), label = paste(before, collapse = " "))
  messages <- unlist(Filter(is.character, got))
  # The fetcher of each host; before, it said "no answer from the region
  # server ... within 2 s" after thousands of answers. (The other daemon of
  # its host gives up waiting for it.)
  expect_gte(sum(grepl("the copy did not complete within 2 s \\([0-9,]+ of [0-9,]+ bytes", messages)),
             length(sim_hosts), label = paste(messages, collapse = " | "))
  expect_identical(sim_connections(cluster), cluster$expected)
})

test_that("a region server that does not answer is waited for once, not once per object", {
  local_remote_mode()
  xs <- lapply(1:4, function(i) share(as.numeric(seq_len(1000)) + i))
  stream <- serialize(xs, NULL)  # exported: the region server runs
  server <- remote_status()$pid
  on.exit(lapply(xs, close), add = TRUE)
  tools::pskill(server, tools::SIGSTOP)
  # Before the objects are closed, which asks the server.
  on.exit(tools::pskill(server, tools::SIGCONT), add = TRUE, after = FALSE)
  out <- unserialize_on_host(cluster$hosts[[1]], stream, setup = "Sys.setenv(SHMR_REMOTE_TIMEOUT = '2')",
                             paste0("cat(paste('result:', vapply(d, function(v) tryCatch(format(sum(v)), ",
                                    "error = conditionMessage), '')), sep = '\\n')"))
  # (Its warnings, at unserialize, come on the same stream.)
  all_out <- paste(out, collapse = "\n")
  out <- sub("^result: ", "", grep("^result: ", out, value = TRUE))
  expect_length(out, 4L)
  # The first object waited the whole timeout; the others were refused at
  # once with its reason (before, each waited 2 s more).
  expect_match(out[1], "no answer from the region server at .* within 2 s", info = all_out)
  expect_false(grepl("not asked again", out[1]))
  for (i in 2:4) {
    expect_match(out[i], paste0("no answer from the region server at .* within 2 s .*s ago, ",
                                "for another object: that server is not asked again until 2 s"))
  }
  tools::pskill(server, tools::SIGCONT)
  # Once it answers, the objects reach a daemon (on a host that did not see it fail).
  got <- mirai::collect_mirai(mirai::everywhere(vapply(d, sum, 0), .args = list(d = xs),
                                                .compute = cluster$profile))
  for (value in got) expect_equal(value, vapply(xs, sum, 0))
})

test_that("a timeout of weeks, or Inf, is waited for without a warning from the network library", {
  local_remote_mode()
  x <- share(as.numeric(seq_len(1e5)))
  on.exit(close(x), add = TRUE)
  stream <- serialize(x, NULL)
  # Each value runs in a fresh process, so each fetches. Before, a wait
  # longer than 24.8 days (2^31 ms) was handed to nanonext as a number of
  # milliseconds it turned into NA, with the warning "NAs introduced by
  # coercion to integer range" for every object fetched.
  for (timeout in c("3e6", "Inf")) {
    out <- unserialize_on_host(cluster$hosts[[1]], stream,
                               setup = sprintf("Sys.setenv(SHMR_REMOTE_TIMEOUT = '%s')", timeout),
                               "cat('result:', tryCatch(format(sum(d)), error = conditionMessage), '\n')")
    all_out <- paste(out, collapse = "\n")
    expect_identical(sub("^result: ", "", grep("^result: ", out, value = TRUE)),
                     paste(format(sum(x)), ""), info = all_out)
    expect_false(grepl("Warning|NAs introduced", all_out), info = all_out)
  }
})

test_that("a fetch that began after a wait for another process's copy does not make its server silent", {
  local_remote_mode()
  xs <- lapply(1:2, function(i) share(as.numeric(seq_len(1000)) + i))
  stream <- serialize(xs, NULL)
  server <- remote_status()$pid
  on.exit(lapply(xs, close), add = TRUE)
  tools::pskill(server, tools::SIGSTOP)
  on.exit(tools::pskill(server, tools::SIGCONT), add = TRUE, after = FALSE)
  # A forked process of the host holds the first object's fetch lock for a
  # second of the two the timeout allows: its fetch then finds the server
  # silent with what is left. The second object's fetch has its whole
  # timeout: before, it was refused at once, the server remembered as
  # silent (on a daemon, for the next minute, at the default timeout).
  setup <- sprintf(paste0(
    "Sys.setenv(SHMR_REMOTE_TIMEOUT = '2'); ",
    "holder <- parallel::mcparallel({ lock <- .Call(shmr:::shmr_fetch_lock, '%s'); Sys.sleep(1) }, detached = TRUE); ",
    "while (!file.exists('/dev/shm/.shmr_lock_%s')) Sys.sleep(0.01); Sys.sleep(0.1)"),
    shared_name(xs[[1]]), shared_name(xs[[1]]))
  out <- unserialize_on_host(cluster$hosts[[1]], stream, setup = setup,
                             paste0("cat(paste('result:', vapply(d, function(v) tryCatch(format(sum(v)), ",
                                    "error = conditionMessage), '')), sep = '\\n')"))
  all_out <- paste(out, collapse = "\n")
  out <- sub("^result: ", "", grep("^result: ", out, value = TRUE))
  expect_length(out, 2L)
  for (i in 1:2) expect_match(out[i], "no answer from the region server at .* within 2 s", info = all_out)
  expect_false(grepl("not asked again", out[2]), info = all_out)
})

test_that("one fetch per host: a fetcher killed midway is replaced by a waiting worker", {
  local_remote_mode()
  # Small chunks make the copy slow enough to be caught midway.
  sim_on_each(cluster, function() Sys.setenv(SHMR_REMOTE_CHUNK = "65536"))
  on.exit(sim_on_each(cluster, function() Sys.unsetenv("SHMR_REMOTE_CHUNK")), add = TRUE)
  x <- share(rnorm(4e6))
  on.exit(close(x), add = TRUE)
  name <- shared_name(x)
  host <- names(cluster$hosts)[1]
  calls <- mirai::everywhere(sum(d), .args = list(d = x), .compute = cluster$profile)
  partial <- character()
  deadline <- Sys.time() + 60
  while (!length(partial) && Sys.time() < deadline) {
    partial <- grep(sprintf("^\\.shmr_tmp_[0-9]+_%s$", name), shm_files(host), value = TRUE)
  }
  expect_length(partial, 1L)
  fetcher <- sub("^\\.shmr_tmp_([0-9]+)_.*$", "\\1", partial)
  sim_host_run(cluster$hosts[[host]], paste("kill -9", fetcher))
  values <- mirai::collect_mirai(calls)
  ok <- vapply(values, function(v) is.numeric(v) && isTRUE(all.equal(v, sum(x))), NA)
  # Every daemon but the killed one computed the sum; on the killed one's
  # host, the other daemon completed the copy after waiting for the lock.
  expect_identical(sum(!ok), 1L)
  expect_true(name %in% shm_files(host))
  # The daemon that took over removed the killed fetcher's partial file
  # before it fetched; the live copy stays.
  expect_false(partial %in% shm_files(host))
  expect_true(name %in% shm_files(host))
  # Bring the cluster back to five daemons.
  mirai::launch_remote(1, remote = sim_remote_config(cluster$hosts[[host]]), .compute = cluster$profile)
  sim_wait_connections(cluster, cluster$expected)
})

test_that("a replica is pruned only once its keeper is dead", {
  local_remote_mode()
  host <- names(cluster$hosts)[2]
  # Every daemon maps the object, so each host has its copy whatever the
  # tests before left (a copy whose keeper was killed is gone, and which
  # host a test's tasks reach is chance).
  sums <- sim_on_each(cluster, function(d) sum(d$x), list(d = big))
  expect_equal(vapply(sums, `[[`, 0, "value"), rep(expected_x, length(sums)))
  keepers <- sim_on_each(cluster, function(name) {
    r <- shmr::shared_regions()
    r$creator_pid[r$name == name]
  }, list(name = big_name))
  keeper <- unique(unlist(lapply(Filter(function(k) k$host == sim_hosts[2], keepers), `[[`, "value")))
  expect_length(keeper, 1L)
  pruned <- sim_host_r(cluster$hosts[[host]], "cat(shmr::prune_shared(), sep = '\\n')")
  expect_false(big_name %in% pruned)
  expect_true(big_name %in% shm_files(host))
  sim_host_run(cluster$hosts[[host]], paste("kill -9", keeper))
  # Until it has exited (on a loaded machine that may take a while).
  deadline <- Sys.time() + 30
  while (sim_host_process_exists(cluster$hosts[[host]], keeper) && Sys.time() < deadline) Sys.sleep(0.05)
  expect_false(sim_host_process_exists(cluster$hosts[[host]], keeper))
  pruned <- sim_host_r(cluster$hosts[[host]], "cat(shmr::prune_shared(), sep = '\\n')")
  expect_true(big_name %in% pruned)
  expect_false(big_name %in% shm_files(host))
})

test_that("a dead remote daemon is not replaced by a local one", {
  pool <- pool_create(backend = "mirai", compute = cluster$profile)
  on.exit(pool_stop(pool))
  before <- pool_status(pool)
  local_before <- sum(sub(":.*$", "", before$host) == owner_host)
  victim <- before[sub(":.*$", "", before$host) == sim_hosts[1], ][1, ]
  connections <- sim_connections(cluster)
  sim_host_run(cluster$hosts[[1]], paste("kill -9", victim$pid))
  deadline <- Sys.time() + 20
  while (sim_connections(cluster) == connections && Sys.time() < deadline) Sys.sleep(0.1)
  got <- pool_lapply(1:10, function(i) i * 2, pool = pool)
  expect_identical(unlist(got), seq(2, 20, 2))
  after <- pool_status(pool)
  expect_identical(after$status[after$pid == victim$pid & after$host == victim$host], "dead")
  expect_identical(sum(sub(":.*$", "", after$host) == owner_host & after$status == "ok"), local_before)
  expect_identical(sim_connections(cluster), connections - 1L)
})

test_that("a pool's call reaches daemons of another host that connect during it", {
  # A scheduler (sbatch, a slow ssh) starts remote daemons after the pool
  # surveyed its workers, all on this host then: its tasks were written
  # without their objects' origins, and each one a late daemon of another
  # host took failed with shmr_region_unavailable.
  own <- sim_cluster(character(0), local = 1L)
  host <- sim_host_start(sprintf("simJ-%d", Sys.getpid()))
  own$hosts$simJ <- host
  pool <- pool_create(backend = "mirai", compute = own$profile)
  on.exit(pool_stop(pool), add = TRUE)
  expect_false(any(pool_status(pool)$host != pool_status(pool)$host[1]))
  x <- share(rnorm(1e5))
  on.exit(close(x), add = TRUE)
  # The daemon enters the host 2 seconds into the call, as from a queue.
  late <- tempfile("shmr-late-", fileext = ".sh")
  on.exit(unlink(late), add = TRUE)
  writeLines(c("#!/bin/sh", "pid=\"$1\"; shift",
               sprintf("( sleep 2; exec '%s' \"$pid\" \"$@\" ) </dev/null >/dev/null 2>&1 &",
                       sim_launcher(exec = TRUE))), late)
  Sys.chmod(late, "0700")
  mirai::launch_remote(1L, remote = mirai::remote_config(
    command = late, args = c(host$pid, "."), quote = TRUE,
    rscript = file.path(R.home("bin"), "Rscript")), .compute = own$profile)
  got <- pool_lapply(1:40, detached(function(i, x) {
    Sys.sleep(0.25)
    list(host = Sys.info()[["nodename"]], sum = sum(x))
  }), x = x, chunk_size = 1L, pool = pool)
  expect_identical(unique(vapply(got, `[[`, 0, "sum")), sum(x))
  expect_true(host$name %in% vapply(got, `[[`, "", "host"))
  # The newcomer fetched the object once, and the pool knows it at its
  # next call.
  expect_gte(served(host$name), shared_info(x)$size)
  expect_lte(served(host$name), 1.05 * shared_info(x)$size)
  invisible(pool_lapply(1:2, function(i) i, pool = pool))
  expect_true(host$name %in% sub(":.*$", "", pool_status(pool)$host))
})

test_that("a pool refuses daemons that cannot load shmr, naming the reason", {
  # Such a daemon answered the pool's survey with an error and was left out
  # without a word: a pool of none failed its first map with "NA/NaN
  # argument", and mirai still gave it tasks, each failing.
  own <- sim_cluster(character(0), local = 1L)
  host <- sim_host_start(sprintf("simN-%d", Sys.getpid()))
  own$hosts$simN <- host
  # The host's file system has no shmr: an empty one over its library.
  shmr_lib <- dirname(system.file(package = "shmr"))
  sim_host_run(host, sprintf("mount -t tmpfs -o size=1m shmr-none %s", shQuote(shmr_lib)))
  expect_identical(sim_host_r(host, "cat(requireNamespace('shmr', quietly = TRUE))"), "FALSE")
  mirai::launch_remote(1L, remote = sim_remote_config(host), .compute = own$profile)
  sim_wait_connections(own, 2L)
  expect_error(pool_create(backend = "mirai", compute = own$profile), paste0(
    "1 of the 2 daemons of compute profile \"", own$profile,
    "\" could not be set up for the pool .*: there is no package called"), class = "shmr_worker_error")
})

test_that("a daemon of another R on another host uses its own shmr, not the caller's build", {
  # The caller's library paths exist on that host too (one root file system
  # here, a home directory shared between hosts on a cluster), and a pool
  # put them first: the daemon loaded the caller's build of shmr, made for
  # another R. An R 4.2 daemon under an R 4.5 owner failed ("undefined
  # symbol: R_set_altlist_Elt_method") and the pool refused it, although
  # its own libraries hold shmr.
  other <- other_r()
  if (is.null(other)) skip("no other R with shmr (set SHMR_OTHER_R and SHMR_OTHER_R_LIBS)")
  series <- function(v) paste(unlist(v)[1:2], collapse = ".")
  if (series(other$version) == series(getRversion())) skip("the other R is of this R's x.y")
  own <- sim_cluster(character(0), local = 1L)
  host <- sim_host_start(sprintf("simR-%d", Sys.getpid()))
  own$hosts$simR <- host
  # Its own libraries, and its own default site library (this R's is for
  # this R).
  launcher <- tempfile("shmr-other-r-", fileext = ".sh")
  on.exit(unlink(launcher), add = TRUE)
  writeLines(c("#!/bin/sh", "pid=\"$1\"; shift", sprintf(
    "exec env -u R_LIBS_SITE R_LIBS=%s R_LIBS_USER=%s '%s' \"$pid\" \"$@\"",
    shQuote(other$libs), shQuote(other$libs), sim_launcher(exec = TRUE))), launcher)
  Sys.chmod(launcher, "0700")
  mirai::launch_remote(1L, remote = mirai::remote_config(
    command = launcher, args = c(host$pid, "."), quote = TRUE,
    rscript = file.path(dirname(other$r), "Rscript")), .compute = own$profile)
  sim_wait_connections(own, 2L)
  pool <- pool_create(backend = "mirai", compute = own$profile)
  on.exit(pool_stop(pool), add = TRUE, after = FALSE)
  x <- share(rnorm(1e5))
  on.exit(close(x), add = TRUE, after = FALSE)
  got <- pool_lapply(1:8, detached(function(i, x) {
    Sys.sleep(0.2)
    list(r = format(getRversion()), shmr = normalizePath(dirname(find.package("shmr"))), sum = sum(x))
  }), x = x, chunk_size = 1L, pool = pool)
  theirs <- Filter(function(g) g$r == format(other$version), got)
  expect_gte(length(theirs), 1L)
  expect_identical(unique(vapply(theirs, `[[`, "", "shmr")),
                   normalizePath(strsplit(other$libs, ":")[[1]][1]))
  expect_identical(unique(vapply(got, `[[`, 0, "sum")), sum(x))
})

test_that("copies left by killed daemons go at their host's next fetch", {
  local_remote_mode()
  own <- sim_cluster("simG", per_host = 2L, local = 0L)
  host <- own$hosts[[1]]
  files <- function() sim_host_run(host, "ls -A /dev/shm")
  x <- share(rnorm(1e5))
  on.exit(close(x), add = TRUE)
  invisible(mirai::collect_mirai(mirai::everywhere(sum(d), .args = list(d = x),
                                                   .compute = own$profile)))
  expect_true(shared_name(x) %in% files())
  # Killed with SIGKILL, so no code of theirs runs. (SIGTERM, as daemons(0)
  # ends busy daemons, runs shmr's handler, which removes the copy at once.)
  sim_host_run(host, "pkill -KILL -f '[m]irai::daemon'")
  deadline <- Sys.time() + 20
  while (sim_connections(own) > 0 && Sys.time() < deadline) Sys.sleep(0.1)
  mirai::launch_remote(2L, remote = sim_remote_config(host), .compute = own$profile)
  sim_wait_connections(own, 2L)
  expect_true(shared_name(x) %in% files())
  # Before, the dead keeper's copy stayed until someone ran prune_shared().
  y <- share(rnorm(1e5))
  on.exit(close(y), add = TRUE)
  invisible(mirai::collect_mirai(mirai::everywhere(sum(d), .args = list(d = y),
                                                   .compute = own$profile)))
  expect_false(shared_name(x) %in% files())
  expect_true(shared_name(y) %in% files())
})

test_that("a task of many small objects does not read every copy of its host for each one it fetches", {
  local_remote_mode()
  own <- sim_cluster("simP", per_host = 1L, local = 0L, shm_size = "256m")
  # The daemon's read() calls so far (its own and its threads').
  read_calls <- detached(function() {
    io <- readLines("/proc/self/io")
    as.numeric(sub("^syscr:\\s*", "", grep("^syscr:", io, value = TRUE)))
  })
  held <- lapply(1:300, function(i) share(rnorm(10) + i))
  on.exit(lapply(held, close), add = TRUE)
  got <- mirai::call_mirai(mirai::mirai(sum(vapply(held, sum, 0)), held = held,
                                        .compute = own$profile))$data
  expect_equal(got, sum(vapply(held, sum, 0)))
  objects <- lapply(1:100, function(i) share(rnorm(10) - i))
  on.exit(lapply(objects, close), add = TRUE)
  invisible(mirai::call_mirai(mirai::mirai(Sys.setenv(SHMR_TEST_READS = read_calls()),
                                           read_calls = read_calls, .compute = own$profile)))
  got <- mirai::call_mirai(mirai::mirai(
    list(sum = sum(vapply(objects, sum, 0)),
         reads = read_calls() - as.numeric(Sys.getenv("SHMR_TEST_READS"))),
    objects = objects, read_calls = read_calls, .compute = own$profile))$data
  expect_equal(got$sum, sum(vapply(objects, sum, 0)))
  expect_gte(as.integer(sim_host_run(own$hosts[[1]], "ls /dev/shm | grep -c '^shmr_'")), 400L)
  # Before, each fetch first read the header of every region of the host,
  # looking for copies of killed processes: 100 fetches beside 300 copies
  # made about 120,000 read calls (and each fetch took longer as the host
  # kept more copies). Now a process looks at most every 2 seconds.
  expect_lt(got$reads, 100 * 300)
})

test_that("a daemon under another host name that shares this shm directory maps the region", {
  # A container started with --ipc=host: a host name of its own (a UTS
  # namespace), this host's shm directory. Before, the region itself was
  # refused there as "not the one the object refers to".
  name <- sprintf("simU-%d", Sys.getpid())
  outer <- sprintf("setsid unshare --uts --fork sh -c 'hostname %s && exec sleep infinity' </dev/null >/dev/null 2>&1 & echo $!", name)
  parent <- as.integer(system2("sh", c("-c", shQuote(outer)), stdout = TRUE))
  on.exit(tools::pskill(parent, tools::SIGKILL), add = TRUE)
  child <- integer()
  deadline <- Sys.time() + 10
  while (!length(child) && Sys.time() < deadline) {
    child <- suppressWarnings(as.integer(run_tool("pgrep", c("-P", parent), stdout = TRUE)))
  }
  expect_length(child, 1L)
  on.exit(tools::pskill(child, tools::SIGKILL), add = TRUE)
  launcher <- tempfile(fileext = ".sh")
  writeLines(c("#!/bin/sh", "pid=\"$1\"; shift", "exec nsenter -t \"$pid\" --uts -- sh -c \"exec $1\""),
             launcher)
  Sys.chmod(launcher, "0700")
  profile <- sprintf("shmr_uts_%d", Sys.getpid())
  mirai::daemons(url = sprintf("tcp://%s:0", sim_owner_address), dispatcher = TRUE, .compute = profile)
  on.exit(mirai::daemons(0, .compute = profile), add = TRUE)
  mirai::launch_remote(1L, remote = mirai::remote_config(
    command = launcher, args = c(child, "."), quote = TRUE,
    rscript = file.path(R.home("bin"), "Rscript")), .compute = profile)
  deadline <- Sys.time() + 30
  while (mirai::status(.compute = profile)$connections < 1L && Sys.time() < deadline) Sys.sleep(0.05)
  local_remote_mode()
  x <- share(rnorm(1e6))
  on.exit(close(x), add = TRUE)
  before <- sum(remote_status()$served$bytes)
  got <- mirai::mirai(list(host = Sys.info()[["nodename"]],
                           sum = tryCatch(sum(d), error = function(e) conditionMessage(e))),
                      d = x, .compute = profile)[]
  expect_identical(got$host, name)
  expect_equal(got$sum, sum(x))
  # Mapped, not copied: nothing was fetched.
  expect_equal(sum(remote_status()$served$bytes), before)
})

test_that("a plain mirai daemon on another host returns its shares as data", {
  # Daemons that dial this host by its name, which must resolve to a
  # loopback address here (the simulated hosts share this host's network).
  name <- Sys.info()[["nodename"]]
  resolved <- suppressWarnings(system2("getent", c("hosts", name), stdout = TRUE))
  skip_if(!length(resolved) || !startsWith(resolved[1L], "127."),
          "this host's name does not resolve to a loopback address")
  named <- sim_cluster("simF", per_host = 1L, local = 0L, address = name)
  expect_match(named$url, name, fixed = TRUE)
  # No remote mode here, no pool, and no shared object sent first: the
  # daemon knows its caller is elsewhere only from the name it dialed.
  # Before, the share came back by name and was unavailable: the data was
  # lost.
  made <- mirai::mirai({
    v <- as.numeric(1:1e5) * 2
    list(host = Sys.info()[["nodename"]], made = shmr::share(v))
  }, .compute = named$profile)[]
  expect_match(made$host, "^simF-")
  expect_equal(sum(made$made), sum(as.numeric(1:1e5) * 2))
  expect_false(is_shared(made$made))
})

test_that("the same over tls+tcp:// (certificates from nanonext)", {
  tls <- sim_cluster(c("simD", "simE"), per_host = 2L, local = 1L, tls = TRUE)
  expect_match(tls$url, "^tls\\+tcp://127\\.0\\.0\\.2:")
  # A plain-TCP region server already runs, for the daemons of `cluster`.
  local_remote_mode()
  plain <- share(as.numeric(1:10))
  on.exit(close(plain), add = TRUE)
  invisible(serialize(plain, NULL))
  expect_identical(remote_status()$tls, FALSE)
  # Without shmr.remote_url, the compute profile of each call chooses the
  # server: these daemons use TLS, so their objects travel with TLS. Before,
  # they went through the plain server (or, with none running, through a
  # plain one started for mirai's default profile).
  options(shmr.remote_url = NULL)
  res <- mirai::mirai_map(1:12, detached(function(i, d) {
    Sys.sleep(0.2)
    c(sum(d$x), shmr::is_shared(d$x))
  }), .args = list(d = big), .compute = tls$profile)[]
  for (r in res) expect_equal(r, c(expected_x, 1))
  status <- remote_status()
  expect_identical(sort(status$tls), c(FALSE, TRUE))
  tls_url <- status$url[status$tls]
  expect_match(tls_url, "^tls\\+tcp://127\\.0\\.0\\.2:")
  # With TLS the origin carries the certificate's fingerprint too (here the
  # URL names the server: outside a mirai call, the default profile would).
  withr::with_options(list(shmr.remote_url = sub(":[0-9]+$", ":0", tls$url)),
                      expect_lt(length(serialize(big$x, NULL)), 400))
  tls_hosts <- vapply(tls$hosts, `[[`, "", "name")
  names(tls_hosts) <- tls_hosts
  fetched_by <- function(h, server) {
    served <- remote_status()$served
    sum(served$bytes[startsWith(served$host, paste0(h, ":")) & served$server %in% server])
  }
  for (h in tls_hosts) {
    expect_gte(fetched_by(h, tls_url), big_size)
    expect_lte(fetched_by(h, tls_url), 1.05 * big_size)
    expect_identical(fetched_by(h, status$url[!status$tls]), 0)
  }
  # A pool over the TLS daemons, with the plain server still running, and
  # an object no host has yet.
  options(shmr.remote = FALSE)
  pool <- pool_create(backend = "mirai", compute = tls$profile)
  on.exit(pool_stop(pool), add = TRUE)
  before <- vapply(tls_hosts, fetched_by, 0, server = tls_url)
  z <- share(rnorm(1e5))
  on.exit(close(z), add = TRUE)
  got <- pool_lapply(1:10, detached(function(i, z) sum(z)), z = z, pool = pool)
  expect_equal(unlist(got), rep(sum(z), 10))
  status <- remote_status()
  expect_identical(sort(status$tls), c(FALSE, TRUE))
  for (h in tls_hosts) {
    expect_gte(fetched_by(h, tls_url) - before[[h]], 8e5)
    expect_identical(fetched_by(h, status$url[!status$tls]), 0)
  }
})

test_that("after daemons(0) no host keeps a copy, and no simulated host is left", {
  # Copies whose keeper was killed above are pruned; the others are kept by
  # live daemons until they exit. (Which daemons fetched, and which of them
  # were killed, is chance: one more copy on each host makes sure some are.)
  local_remote_mode()
  last <- share(rnorm(1e5))
  on.exit(close(last))
  invisible(mirai::collect_mirai(mirai::everywhere(sum(d), .args = list(d = last),
                                                   .compute = cluster$profile)))
  for (host in cluster$hosts) sim_host_r(host, "invisible(shmr::prune_shared())")
  for (h in names(cluster$hosts)) expect_true(shared_name(last) %in% shm_files(h))
  mirai::daemons(0, .compute = cluster$profile)
  deadline <- Sys.time() + 20
  repeat {
    left <- unlist(lapply(names(cluster$hosts), function(h) shm_files(h, "^shmr_|^\\.shmr")))
    if (!length(left) || Sys.time() > deadline) break
    Sys.sleep(0.2)
  }
  expect_length(left, 0L)
  sim_cluster_stop(cluster)
  expect_length(sim_leftover_hosts(), 0L)
})
