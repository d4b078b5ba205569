# Resource limits a user's shell or a scheduler (Slurm, containers) puts on
# an R process: the address space (ulimit -v), the data size (ulimit -d).
# They are lowered on a running R session from outside with prlimit(1), so
# R itself starts as usual, and raised again afterwards: a refused mapping
# is a clear error naming the limit, leaves nothing behind, earlier shared
# objects still read, and the same session works once the limit is lifted.

skip_without_prlimit <- function() {
  skip_on_cran()
  skip_on_os(c("windows", "mac", "solaris"))
  skip_if(Sys.which("prlimit") == "", "prlimit(1) is not installed")
}

status_bytes <- function(pid, field) {
  line <- grep(paste0("^", field, ":"), readLines(sprintf("/proc/%d/status", pid)), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line)) * 1024
}

set_limit <- function(pid, resource, soft) {
  value <- if (is.infinite(soft)) "unlimited" else format(soft, scientific = FALSE)
  status <- system2("prlimit", c("--pid", pid, sprintf("--%s=%s:", resource, value)),
                    stdout = FALSE, stderr = FALSE)
  if (!identical(status, 0L)) skip(sprintf("prlimit cannot set --%s here", resource))
}

# The files in the shm directory that process `pid` made: its regions and
# its half-written temporary files. Those of other processes (tests or
# sessions running beside this one) come and go at any time.
files_made_by <- function(pid) {
  listed <- list.files(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"), all.files = TRUE, no.. = TRUE)
  regions <- shared_regions()
  c(grep(sprintf("^\\.shmr_tmp_%d_", pid), listed, value = TRUE),
    intersect(listed, regions$name[regions$creator_pid == pid]))
}

shm_mappings <- function(pid) {
  dir <- normalizePath(Sys.getenv("SHMR_SHM_DIR", "/dev/shm"))
  sum(grepl(dir, readLines(sprintf("/proc/%d/maps", pid)), fixed = TRUE))
}

# In a fresh session: a 64 MB share `x`, its data `v` (kept, to share again)
# and its name; then `resource` is limited to what the session uses plus
# 24 MB, and new mappings of 64 MB are refused.
limited_session_checks <- function(resource, field, pattern) {
  skip_without_prlimit()
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  name <- session$run(function() {
    v <<- as.numeric(seq_len(8e6))
    x <<- share(v)
    invisible(gc())
    shared_name(x)
  })
  files <- function() files_made_by(pid)
  pid <- session$get_pid()
  before <- files()
  mapped <- shm_mappings(pid)
  set_limit(pid, resource, status_bytes(pid, field) + 24 * 1024^2)
  limited <- session$run(function(name) {
    attempt <- function(expr) tryCatch({ force(expr); "ok" }, error = conditionMessage)
    list(map = attempt(map_shared(name)),
         share = attempt(share(v)),
         earlier = identical(x[8e6], 8e6) && identical(sum(x), sum(as.numeric(seq_len(8e6)))))
  }, list(name))
  after <- files()
  mapped_limited <- shm_mappings(pid)
  set_limit(pid, resource, Inf)
  lifted <- session$run(function(name) {
    y <- share(v)
    list(map = sum(map_shared(name)), share = sum(y), y_backing = shared_info(y)$backing)
  }, list(name))
  expect_match(limited$map, pattern)
  expect_match(limited$share, pattern)
  expect_true(limited$earlier)
  # The refused share left no region or temporary file, nor a mapping.
  expect_true(name %in% before)
  expect_setequal(after, before)
  expect_identical(mapped_limited, mapped)
  expect_identical(lifted$map, sum(as.numeric(seq_len(8e6))))
  expect_identical(lifted$share, sum(as.numeric(seq_len(8e6))))
}

test_that("a mapping refused by the address-space limit (ulimit -v) says so; lifted, it works", {
  limited_session_checks("as", "VmSize",
                         "^shmr: mmap of [0-9]+ bytes \\(this process's address-space limit, `ulimit -v`")
})

test_that("a mapping refused by the data-size limit (ulimit -d) says so; lifted, it works", {
  # Linux counts private writable mappings, such as a read-only share's
  # copy-on-write one, against the data-size limit.
  limited_session_checks("data", "VmData",
                         "^shmr: mmap of [0-9]+ bytes \\(this process's data-size limit, `ulimit -d`")
})

test_that("an allocation refused inside shmr says out of memory, not std::bad_alloc; lifted, it works", {
  skip_without_prlimit()
  skip_if_memory_is_sanitized()
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  session$run(function() {
    l <<- as.list(seq_len(3e6))
    invisible(gc())
  })
  pid <- session$get_pid()
  # Room for R's own small allocations, not for shmr's tables of 3e6 elements.
  set_limit(pid, "as", status_bytes(pid, "VmSize") + 24 * 1024^2)
  limited <- session$run(function() tryCatch({ share(l); "ok" }, error = conditionMessage))
  set_limit(pid, "as", Inf)
  expect_match(limited, "^shmr: (out of memory \\(an allocation failed|mmap of [0-9]+ bytes)")
  expect_no_match(limited, "^std::bad_alloc")
  expect_true(session$run(function() identical(share(l), l)))
})

test_that("a small mapping refused by the address-space limit does not blame the number of mappings", {
  skip_without_prlimit()
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  name <- session$run(function() {
    x <<- share(as.numeric(1:1000))
    invisible(gc())
    shared_name(x)
  })
  pid <- session$get_pid()
  # Room for R's own small allocations, none for 4 MB more of mappings.
  set_limit(pid, "as", status_bytes(pid, "VmSize") + 2 * 1024^2)
  limited <- session$run(function(name) {
    ys <- list()
    tryCatch({
      for (i in 1:1000) ys[[i]] <- map_shared(name)
      "ok"
    }, error = conditionMessage)
  }, list(name))
  set_limit(pid, "as", Inf)
  expect_match(limited, "address-space limit, `ulimit -v`")
  expect_no_match(limited, "vm.max_map_count", fixed = TRUE)
  expect_identical(session$run(function(name) sum(map_shared(name)), list(name)), 500500)
})

# The open-file limit that leaves `free` descriptor numbers unused in
# process `pid` (the kernel refuses a number at or past the limit; open
# descriptors may leave gaps below it).
limit_leaving <- function(pid, free) {
  used <- suppressWarnings(as.integer(list.files(sprintf("/proc/%d/fd", pid))))
  limit <- 0L
  while (free > 0L) {
    if (!limit %in% used) free <- free - 1L
    limit <- limit + 1L
  }
  limit
}

test_that("a pool refused file descriptors (ulimit -n) fails at once, naming the limit; lifted, it works", {
  skip_without_prlimit()
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  session$run(function() x <<- share(as.numeric(1:1000)))
  pid <- session$get_pid()
  # One descriptor left while the session runs a call (callr takes two):
  # before, makePSOCKcluster() waited 4 minutes for
  # workers that could not start, then said "Cluster setup failed".
  set_limit(pid, "nofile", limit_leaving(pid, 3))
  started <- Sys.time()
  refused <- session$run(function() tryCatch(pool_create(2), error = conditionMessage))
  took <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  set_limit(pid, "nofile", 1024)
  expect_match(refused, "needs [0-9]+ free file descriptors .* `ulimit -n`")
  expect_lt(took, 30)
  # A worker that dies while descriptors are short is not replaced: the map
  # fails at once, and the pool replaces it once the limit is raised.
  got <- session$run(function() {
    pool <<- pool_create(2)
    unlist(pool_lapply(1:2, function(i, x) sum(x) + i, x = x, pool = pool))
  })
  expect_identical(got, c(500501, 500502))
  set_limit(pid, "nofile", limit_leaving(pid, 3))
  started <- Sys.time()
  died <- session$run(function() {
    tryCatch(pool_lapply(1:2, function(i) if (i == 1) tools::pskill(Sys.getpid(), 9) else i,
                         pool = pool), error = conditionMessage)
  })
  took <- as.numeric(difftime(Sys.time(), started, units = "secs"))
  set_limit(pid, "nofile", 1024)
  expect_match(died, "`ulimit -n`")
  expect_lt(took, 30)
  again <- session$run(function() {
    list(sums = unlist(pool_lapply(1:4, function(i, x) sum(x) + i, x = x, pool = pool)),
         status = pool_status(pool)$status, stop = pool_stop(pool))
  })
  expect_identical(again$sums, 500500 + 1:4)
  expect_identical(again$status, c("ok", "ok"))
})

test_that("with no file descriptor left, shares fail naming it, nothing is left, and all works after", {
  skip_without_prlimit()
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  session$run(function() {
    x <<- share(as.numeric(1:1e5), backing = "mmap")
    stream <<- serialize(x, NULL)
    invisible(NULL)
  })
  files <- function() files_made_by(pid)
  pid <- session$get_pid()
  before <- files()
  set_limit(pid, "nofile", limit_leaving(pid, 3))
  starved <- session$run(function() {
    attempt <- function(expr) tryCatch({ force(expr); "ok" }, error = conditionMessage)
    # Every descriptor left is taken by connections, as a session that
    # opened many files would have them.
    held <- list()
    repeat {
      con <- tryCatch(file(tempfile(), "w"), error = function(e) NULL, warning = function(w) NULL)
      if (is.null(con)) break
      held[[length(held) + 1L]] <- con
    }
    on.exit(for (con in held) close(con))
    list(held = length(held),
         share = attempt(share(as.numeric(1:1000))),
         map = attempt(map_shared(shared_name(x))),
         open = attempt(share_open(shared_info(x)$path)),
         segment = attempt(segment_create(1e4)),
         earlier = sum(x))
  })
  after <- files()
  set_limit(pid, "nofile", 1024)
  lifted <- session$run(function() {
    y <- share(as.numeric(1:1000))
    list(share = sum(y), map = sum(map_shared(shared_name(x))),
         open = sum(share_open(shared_info(x)$path)), unserialized = sum(unserialize(stream)))
  })
  expect_gte(starved$held, 1)
  expect_match(starved$share, "^shmr: cannot create a region in .*: Too many open files")
  expect_match(starved$segment, "^shmr: cannot create a region in .*: Too many open files")
  expect_match(starved$map, "^shmr: cannot open region .*: Too many open files")
  # It is a share: the error is why it cannot be opened, not that it is none.
  expect_match(starved$open, "^cannot open share '.*': shmr: cannot open region .*: Too many open files")
  expect_identical(starved$earlier, sum(as.numeric(1:1e5)))
  expect_setequal(after, before)
  expect_identical(lifted, list(share = 500500, map = sum(as.numeric(1:1e5)),
                                open = sum(as.numeric(1:1e5)), unserialized = sum(as.numeric(1:1e5))))
})

test_that("a region larger than the file-size limit (ulimit -f) is an error, not SIGXFSZ; lifted, it works", {
  skip_without_prlimit()
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  session$run(function() {
    v <<- as.numeric(seq_len(1e6))
    x <<- share(v)
    invisible(NULL)
  })
  files <- function() files_made_by(pid)
  pid <- session$get_pid()
  before <- files()
  # Sizing a file past the limit raises SIGXFSZ, which ended R at once.
  set_limit(pid, "fsize", 1024^2)
  limited <- session$run(function() {
    attempt <- function(expr) tryCatch({ force(expr); "ok" }, error = conditionMessage)
    list(shm = attempt(share(v, backing = "shm")),
         mmap = attempt(share(v, backing = "mmap")),
         auto = attempt(share(v)),
         segment = attempt(segment_create(8e6)),
         buffer = attempt(shared_buffer("double", 1e6)),
         small = { s <- share(as.numeric(1:1000)); on.exit(close(s)); sum(s) },
         earlier = sum(x))
  })
  after <- files()
  set_limit(pid, "fsize", Inf)
  lifted <- session$run(function() sum(share(v, backing = "mmap")) + sum(share(v, backing = "shm")))
  pattern <- "^shmr: a region of [0-9]+ bytes is larger than this process's file-size limit, `ulimit -f`, of 1048576 bytes"
  for (what in c("shm", "mmap", "auto", "segment", "buffer")) expect_match(limited[[what]], pattern, info = what)
  expect_identical(limited$small, 500500)
  expect_identical(limited$earlier, sum(as.numeric(seq_len(1e6))))
  expect_setequal(after, before)
  expect_identical(lifted, 2 * sum(as.numeric(seq_len(1e6))))
})

test_that("a share written where no thread can be started is written without one", {
  skip_on_cran()
  skip_on_os(c("windows", "mac", "solaris"))
  skip_if_memory_is_sanitized()
  # Large data goes to the file from a second thread. Where none can start
  # (a limit on processes or threads, as containers' pids.max, or here a
  # stack limit whose thread stacks the address-space limit cannot hold),
  # share() failed with "Resource temporarily unavailable".
  script <- tempfile(fileext = ".R")
  out <- tempfile()
  writeLines(c(
    "library(shmr)",
    "x <- as.numeric(seq_len(4e6)) + 0.5",
    "attempt <- function(expr) tryCatch(force(expr), error = conditionMessage)",
    "got <- list(shm = attempt(sum(share(x, backing = 'shm'))),",
    "            mmap = attempt(sum(share(x, backing = 'mmap'))),",
    "            list = attempt(sum(share(list(a = x, b = x))$b)))",
    sprintf("saveRDS(got, %s)", deparse(out))
  ), script)
  cmd <- sprintf("ulimit -s 4000000 && ulimit -v 2000000 && %s --vanilla %s",
                 file.path(R.home("bin"), "Rscript"), script)
  status <- system2("sh", c("-c", shQuote(cmd)), stdout = FALSE, stderr = FALSE)
  skip_if(!file.exists(out), "the limits cannot be set here, or R does not start under them")
  got <- readRDS(out)
  expected <- sum(as.numeric(seq_len(4e6)) + 0.5)
  expect_identical(got, list(shm = expected, mmap = expected, list = expected))
})

test_that("a mirai pool refused file descriptors fails at once, naming the limit; lifted, it works", {
  skip_without_prlimit()
  skip_if_not_installed("mirai")
  session <- start_worker()
  pid <- session$get_pid()
  # Killed (it may be stuck in daemons()), the session cannot remove its x:
  # its regions go once it is gone, as a pool does for a worker it kills.
  on.exit({
    session$kill()
    session$wait(5000)
    shmr:::prune_regions_of(pid)
  }, add = TRUE)
  session$run(function() {
    loadNamespace("mirai")
    x <<- share(as.numeric(1:1000))
    invisible(NULL)
  })
  set_limit(pid, "nofile", limit_leaving(pid, 3))
  # Before, mirai::daemons() never returned: wait 30 s at most.
  session$call(function() tryCatch(pool_create(2, backend = "mirai"), error = conditionMessage))
  answered <- session$poll_process(30000) == "ready"
  expect_true(answered)
  if (!answered) return()
  refused <- session$read()$result
  set_limit(pid, "nofile", 1024)
  expect_match(refused, "needs [0-9]+ free file descriptors .* `ulimit -n`")
  got <- session$run(function() {
    pool <- pool_create(2, backend = "mirai")
    on.exit(pool_stop(pool))
    unlist(pool_lapply(1:2, function(i, x) sum(x) + i, x = x, pool = pool))
  })
  expect_identical(got, c(500501, 500502))
})

test_that("an object unserialized with no file descriptor left works once descriptors are back", {
  skip_without_prlimit()
  owner <- start_worker()
  on.exit(owner$close(), add = TRUE)
  streams <- owner$run(function() {
    kept <<- share(as.numeric(1:1e5))
    words <<- share(rep(c("a", "bc"), 500))
    released <- share(as.numeric(1:10))
    streams <- list(kept = serialize(kept, NULL), words = serialize(words, NULL),
                    released = serialize(released, NULL))
    remove_shared(shared_name(released))
    streams
  })
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  pid <- session$get_pid()
  set_limit(pid, "nofile", limit_leaving(pid, 3))
  starved <- session$run(function(streams) {
    held <- list()
    repeat {
      con <- tryCatch(file(tempfile(), "w"), error = function(e) NULL, warning = function(w) NULL)
      if (is.null(con)) break
      held[[length(held) + 1L]] <- con
    }
    on.exit(for (con in held) close(con))
    warnings <- character()
    keep_warning <- function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
    withCallingHandlers({
      # Unserializing never fails: the objects come back unavailable.
      x <<- unserialize(streams$kept)
      x_again <<- unserialize(streams$kept)
      words <<- unserialize(streams$words)
      gone <<- unserialize(streams$released)
    }, warning = keep_warning)
    used <- withCallingHandlers(tryCatch(sum(x), error = function(e) class(e)[1]),
                                warning = keep_warning)
    list(held = length(held), warnings = warnings, used = used)
  }, list(streams))
  set_limit(pid, "nofile", 1024)
  lifted <- session$run(function() {
    warnings <- character()
    withCallingHandlers({
      sums <- c(sum(x), sum(x_again), x[1e5])
      words_read <- paste(words[1:3], collapse = " ")
      words_length <- length(words)
      gone_use <- tryCatch(sum(gone), error = function(e) c(class(e)[1], conditionMessage(e)))
    }, warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
    list(sums = sums, words_read = words_read, words_length = words_length,
         gone_use = gone_use, warnings = warnings, shared = is_shared(x),
         again = identical(unserialize(serialize(x, NULL)), x))
  })
  expect_gte(starved$held, 1)
  expect_identical(starved$used, "shmr_region_unavailable")
  # One warning per region: two objects of the kept one, one of each other.
  expect_length(starved$warnings, 3L)
  expect_match(starved$warnings, "Too many open files|no shared region named")
  expect_identical(lifted$sums, c(rep(sum(as.numeric(1:1e5)), 2), 1e5))
  expect_identical(lifted$words_read, "a bc a")
  expect_identical(lifted$words_length, 1000L)
  # A region that is gone stays unavailable, says so now, and warns no more.
  expect_identical(lifted$gone_use[1], "shmr_region_unavailable")
  expect_match(lifted$gone_use[2], "not available here: no shared region named", fixed = TRUE)
  expect_identical(lifted$warnings, character())
  expect_true(lifted$shared)
  expect_true(lifted$again)
})

test_that("under the address-space limit, objects no longer referenced give way to a new one", {
  skip_without_prlimit()
  x <- share(as.numeric(seq_len(8e6)))
  stream <- serialize(x, NULL)
  session <- start_worker()
  on.exit(session$close(), add = TRUE)
  session$run(function(stream) {
    y <<- unserialize(stream)
    invisible(gc())
  }, list(stream))
  pid <- session$get_pid()
  # Room for R's own allocations, not for a second 64 MB mapping.
  set_limit(pid, "as", status_bytes(pid, "VmSize") + 24 * 1024^2)
  # A pool worker's way: each task's object arrives while the last one's is
  # garbage the collector has not freed yet; before, the second object found
  # no room for its mapping and came unavailable.
  got <- session$run(function(stream) {
    warned <- character()
    values <- withCallingHandlers({
      vapply(1:5, function(i) {
        y <<- NULL
        y <<- unserialize(stream)
        y[[8e6]]
      }, 0)
    }, warning = function(w) {
      warned <<- c(warned, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
    list(values = values, warned = warned)
  }, list(stream))
  set_limit(pid, "as", Inf)
  expect_identical(got$values, rep(8e6, 5))
  expect_identical(got$warned, character())
})
