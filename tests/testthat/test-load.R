# Load: several processes at once run share/map/serialize/close cycles in one
# private shm directory (SHMR_SHM_DIR), mapping each other's regions too.
# No error, no wrong value, no leaked region, descriptor or mapping, and a
# region is never freed while an object still refers to it. 4 processes x 50
# cycles here; 8 x 1,000 with SHMR_LONG_TESTS=1.

# One worker: `cycles` cycles, then its own checks. Returns counts and the
# problems it saw.
load_worker <- function(id, workers, cycles, shm, data, peers) {
  Sys.setenv(SHMR_SHM_DIR = shm)
  library(shmr)
  fds <- function() length(list.files("/proc/self/fd"))
  region_maps <- function() {
    m <- readLines("/proc/self/maps")
    sum(grepl(shm, m, fixed = TRUE) | grepl(data, m, fixed = TRUE))
  }
  all_maps <- function() length(readLines("/proc/self/maps"))
  object <- function(i) {
    list(id = id, i = i, v = as.numeric(seq_len(1000 + i %% 50)) + i, s = as.character(i + 1:20))
  }
  valid <- function(y) {
    identical(y$v, as.numeric(seq_len(1000 + y$i %% 50)) + y$i) &&
      identical(y$s, as.character(y$i + 1:20))
  }
  problems <- character()
  note <- function(...) problems <<- c(problems, paste0("worker ", id, ": ", ...))
  publish_kept <- function(kept) {
    tmp <- file.path(peers, paste0(".", id))
    writeLines(vapply(kept, function(k) k$name, ""), tmp)
    file.rename(tmp, file.path(peers, id))
  }
  one_cycle <- function(i, kept) {
    obj <- object(i)
    x <- share(obj, backing = if (i %% 4 == 0) "mmap" else "shm", path = data)
    y <- map_shared(shared_name(x))
    z <- unserialize(serialize(x, NULL))
    if (!identical(fetch(x), obj) || !identical(fetch(y), obj) || !identical(fetch(z), obj)) {
      note("cycle ", i, ": wrong values")
    }
    # (close(y) here would remove the region: in its creator, close()
    # releases the region whichever mapping it is given.)
    rm(y, z)
    # Every 10th object keeps a part alive (its region must stay); others
    # are closed now or left to the garbage collector.
    if (i %% 10 == 0) {
      kept[[length(kept) + 1]] <- list(part = x$v, name = shared_name(x), i = i)
      if (length(kept) > 5) kept <- kept[-1]
    } else if (i %% 2 == 1) {
      close(x)
    }
    kept
  }
  check_kept <- function(kept) {
    for (k in kept) {
      if (!file.exists(file.path(shm, k$name))) note("region of cycle ", k$i, " freed while referenced")
      if (!identical(k$part[], as.numeric(seq_len(1000 + k$i %% 50)) + k$i)) {
        note("part of cycle ", k$i, " changed")
      }
    }
  }
  map_peers <- function() {
    listed <- 0
    mapped <- 0
    for (peer in setdiff(list.files(peers, pattern = "^[0-9]+$"), id)) {
      for (name in readLines(file.path(peers, peer), warn = FALSE)) {
        # close() in a process that did not create the region only unmaps
        # it: the creator's check_kept() sees the region stay.
        result <- tryCatch({
          y <- map_shared(name)
          ok <- valid(fetch(y))
          close(y)
          if (ok) "ok" else "wrong values"
        }, error = function(e) conditionMessage(e))
        # The peer may have let go of it since it published the name.
        listed <- listed + 1
        if (identical(result, "ok")) {
          mapped <- mapped + 1
        } else if (!grepl("^shmr: no shared region named", result)) {
          note("peer region ", name, ": ", result)
        }
      }
    }
    c(listed = listed, mapped = mapped)
  }
  # Waits until every worker has left a marker named `step`: workers start
  # and run at their own pace, and without this one could finish (and free
  # its regions) before another looked at them.
  meet <- function(step) {
    file.create(file.path(peers, paste0(step, "-", id)))
    deadline <- Sys.time() + 60
    while (length(list.files(peers, pattern = paste0("^", step, "-"))) < workers) {
      if (Sys.time() > deadline) {
        note("peers did not all reach '", step, "' within 60 s")
        return(invisible(FALSE))
      }
      Sys.sleep(0.05)
    }
    invisible(TRUE)
  }

  kept <- one_cycle(0, list())  # warm-up: first uses load code and caches
  kept <- list()
  invisible(gc())
  before <- c(fds = fds(), region_maps = region_maps(), all_maps = all_maps())
  for (i in seq_len(cycles)) {
    kept <- tryCatch(one_cycle(i, kept), error = function(e) {
      note("cycle ", i, ": ", conditionMessage(e))
      kept
    })
    if (i %% 10 == 0) publish_kept(kept)
    if (i %% 25 == 0) {
      invisible(gc())
      check_kept(kept)
      map_peers()
    }
  }
  check_kept(kept)
  # Every worker's last regions are alive until all have mapped them.
  publish_kept(kept)
  meet("published")
  final <- map_peers()
  meet("mapped")
  rm(kept)
  invisible(gc())
  regions <- shared_regions()
  own <- regions$name[regions$creator_pid == Sys.getpid()]
  after <- c(fds = fds(), region_maps = region_maps(), all_maps = all_maps())
  list(problems = problems, before = before, after = after, own = own, final = final)
}

test_that("processes sharing, mapping and closing at once leak nothing", {
  skip_on_cran()
  skip_without_callr()
  skip_on_os(c("windows", "mac"))
  workers <- short_or_long(4, 8)
  cycles <- short_or_long(50, 1000)
  shm <- tempfile("shm")
  data <- tempfile("data")
  peers <- tempfile("peers")
  for (d in c(shm, data, peers)) dir.create(d, mode = "0700")
  on.exit(unlink(c(shm, data, peers), recursive = TRUE), add = TRUE)
  worker <- load_worker
  environment(worker) <- globalenv()
  procs <- lapply(seq_len(workers), function(id) {
    callr::r_bg(worker, list(id = as.character(id), workers = workers, cycles = cycles,
                             shm = shm, data = data, peers = peers))
  })
  timeout <- short_or_long(120, 3600) * 1000
  for (p in procs) p$wait(timeout)
  results <- lapply(procs, function(p) {
    if (p$is_alive()) {
      p$kill()
      return(list(problems = "timed out"))
    }
    tryCatch(p$get_result(), error = function(e) list(problems = conditionMessage(e)))
  })
  for (r in results) {
    expect_identical(r$problems, character())
    if (length(r$problems)) next
    # Nothing of its own left, after its last references went.
    expect_identical(r$own, character())
    expect_identical(r$after[["fds"]], r$before[["fds"]])
    expect_identical(r$after[["region_maps"]], r$before[["region_maps"]])
    # R's own allocations come and go; thousands of regions must not stay.
    expect_lte(r$after[["all_maps"]], r$before[["all_maps"]] + 10)
  }
  # The workers did map each other's regions: at the end, every region the
  # others still held (five each) and had published.
  for (r in results) {
    if (is.null(r$final)) next
    expect_identical(r$final[["listed"]], 5 * (workers - 1))
    expect_identical(r$final[["mapped"]], r$final[["listed"]])
  }
  # After they exited, nothing is left anywhere.
  expect_identical(list.files(shm, all.files = TRUE, no.. = TRUE), character())
  expect_identical(list.files(data, all.files = TRUE, no.. = TRUE), character())
})
