# Helpers shared by the metrics: recording rows, timing, memory readings,
# and consumer processes.

new_context <- function(quick, out_dir, systems) {
  rows <- list()
  ctx <- new.env()
  ctx$quick <- quick
  ctx$out_dir <- out_dir
  ctx$systems <- systems
  # The largest vector for the "2 GB" metrics; smaller in quick mode.
  ctx$big <- if (quick) 128 * 2^20 else 2 * 2^30
  # The vector scanned whole (range(), ==, identical(), sum()): their time
  # grows with the size and their ratios do not, so 512 MB is enough.
  ctx$scan_size <- if (quick) 64 * 2^20 else 512 * 2^20
  ctx$sizes <- if (quick) c(1, 64, 128) * 2^20 else c(1, 64, 512, 2048) * 2^20
  ctx$reps <- if (quick) 3L else 5L
  # Repeats at a size: copies of 512 MB and more take seconds each and vary
  # less, so 3 of them keep the full run within its time budget.
  # Small copies take a millisecond, where one preemption on the shared
  # machine shows: 21 of them (13 quick) cost nothing.
  ctx$reps_at <- function(size) {
    if (size >= 512 * 2^20) min(ctx$reps, 3L) else if (size <= 2^20) 4L * ctx$reps + 1L else ctx$reps
  }
  # The memory a run may take (its processes' private memory plus the shared
  # memory it creates): SHMR_BENCH_MEMORY_GB, 10 by default. A case that
  # would take more, or leave less than 2 GB free, is skipped with the
  # reason recorded.
  ctx$memory_budget <- as.numeric(Sys.getenv("SHMR_BENCH_MEMORY_GB", "10")) * 1e9
  ctx$fits <- function(bytes) bytes <= min(ctx$memory_budget, available_memory() - 2e9)
  ctx$skip_reason <- function(bytes, what) {
    sprintf("needs about %.1f GB (%s); the budget is %.0f GB and %.1f GB are available",
            bytes / 1e9, what, ctx$memory_budget / 1e9, available_memory() / 1e9)
  }
  # One random double vector of `size` bytes, reused by the metrics that
  # share a vector of each size (only the latest size is kept).
  cached <- NULL
  ctx$vector <- function(size) {
    if (is.null(cached) || length(cached) != size / 8) {
      cached <<- NULL
      invisible(gc())
      cached <<- runif(size / 8)
    }
    cached
  }
  ctx$drop_vector <- function() {
    cached <<- NULL
    invisible(gc())
  }
  ctx$record <- function(metric, case, system, size_bytes, value, unit) {
    rows[[length(rows) + 1L]] <<- data.frame(
      metric = metric, case = case, system = system, size_bytes = size_bytes,
      value = value, unit = unit, r_version = as.character(getRversion()),
      date = format(Sys.time(), "%Y-%m-%d %H:%M:%S"), stringsAsFactors = FALSE
    )
  }
  ctx$results <- function() do.call(rbind, rows)
  # Systems that can run here, with a "skipped" row for each one that cannot.
  ctx$usable <- function(metric, kind = "double") {
    keep <- list()
    for (s in ctx$systems) {
      if (!(kind %in% s$supports)) next
      ok <- tryCatch(s$available(), error = function(e) conditionMessage(e))
      if (isTRUE(ok)) keep[[s$name]] <- s
      else ctx$record(metric, "skipped", s$name, NA, NA, as.character(ok))
    }
    keep
  }
  ctx
}

# Seconds taken by f(), with microsecond resolution.
seconds <- function(f) {
  t0 <- Sys.time()
  f()
  as.numeric(Sys.time() - t0, units = "secs")
}

median_seconds <- function(f, reps) median(vapply(seq_len(reps), function(i) seconds(f), 0))

# Warm medians, in ms, of named calls timed in turn: each called once
# untimed, then `reps` rounds in a random order, each call after a full
# collection (calls that allocate hundreds of MB would otherwise pay, by
# chance, for the garbage of the calls before them).
medians_in_turn <- function(calls, reps) {
  for (f in calls) invisible(f())
  times <- lapply(calls, function(f) numeric())
  for (round in seq_len(reps)) {
    for (name in sample(names(calls))) {
      invisible(gc())
      times[[name]] <- c(times[[name]], seconds(calls[[name]]) * 1e3)
    }
  }
  lapply(times, median)
}

# The positions of the x[idx] probes (10 million, or an eighth of a shorter
# vector), the same for every system and its ordinary copy; reseeds the
# random number generator.
random_positions <- function(v) {
  set.seed(20160)
  n <- NROW(v)  # a big.matrix (bigmemory) has rows, not a length
  sample.int(n, if (n >= 5e7) 1e7 else n %/% 8L)
}

# An ordinary copy of a data frame, whatever backs its columns (ALTREP views
# or not), with every attribute (levels, classes, row names) kept.
plain_frame <- function(d) {
  plain_column <- function(col) {
    copy <- vector(typeof(col), length(col))
    copy[] <- col
    attributes(copy) <- attributes(col)
    copy
  }
  out <- lapply(d, plain_column)
  attributes(out) <- attributes(d)
  out
}

# A field of /proc/<pid>/smaps_rollup, in bytes. Workers that read their
# own memory are sent it along with anonymous_bytes().
smaps_bytes <- function(field, pid = Sys.getpid()) {
  lines <- readLines(sprintf("/proc/%d/smaps_rollup", pid))
  line <- grep(paste0("^", field, ":"), lines, value = TRUE)
  as.numeric(sub("^[^:]+:\\s*([0-9]+) kB.*$", "\\1", line)) * 1024
}
# Memory private to the process: its heap and pages it copied on write.
anonymous_bytes <- function(pid = Sys.getpid()) smaps_bytes("Anonymous", pid)
# Pages only this process maps and has written; for forked workers, whose
# Anonymous memory starts out shared with their parent.
private_dirty_bytes <- function(pid = Sys.getpid()) smaps_bytes("Private_Dirty", pid)

# A consumer process with the adapters loaded and the package of `system`
# (every system's when NULL); close it with $close().
consumer <- function(system = NULL) {
  session <- callr::r_session$new()
  session$run(function(helpers, systems_file, system) {
    suppressPackageStartupMessages(library(shmr))
    source(helpers)
    source(systems_file)
    assign("systems", systems, globalenv())
    # Load the package now, so that no timing includes loading it.
    for (s in systems) {
      if (!is.null(s$package) && (is.null(system) || s$name == system)) {
        suppressPackageStartupMessages(requireNamespace(s$package, quietly = TRUE))
      }
    }
    invisible(gc())
    NULL
  }, list(helpers = normalizePath("bench/helpers.R"),
          systems_file = Sys.getenv("SHMR_BENCH_SYSTEMS", normalizePath("bench/systems.R")),
          system = system))
  session
}

# Runs f(...) once in a fresh consumer process for `system`, which is
# closed afterwards.
in_consumer <- function(f, args, system = NULL) {
  worker <- consumer(system)
  on.exit(worker$close())
  worker$run(f, args)
}

# Runs f(...) in a fresh consumer for `system` and returns its value, or
# NULL when it has not finished within `timeout` seconds (the consumer is
# then killed). An error in f is an error here.
in_consumer_within <- function(f, args, system = NULL, timeout) {
  worker <- consumer(system)
  # A busy consumer is killed once the grace period is over.
  on.exit(worker$close(grace = 1000))
  worker$call(f, args)
  if (worker$poll_process(as.integer(ceiling(timeout * 1000))) != "ready") return(NULL)
  reply <- worker$read()
  if (!is.null(reply$error)) stop(conditionMessage(reply$error), call. = FALSE)
  reply$result
}

read_of <- function(s) if (is.null(s$read)) function(obj, i) obj[i] else s$read
sum_of <- function(s) if (is.null(s$sum)) function(obj) sum(obj) else s$sum

mb <- function(bytes) bytes / 2^20

# Bytes the kernel says can be allocated without swapping.
available_memory <- function() {
  line <- grep("^MemAvailable:", readLines("/proc/meminfo"), value = TRUE)
  as.numeric(sub("^MemAvailable:\\s*([0-9]+) kB.*$", "\\1", line)) * 1024
}

# bench/altrep_floor.c built for the running R (on first use, into build/,
# one library per R version): the path of its shared library, or NULL (with
# a message) when it cannot be built, in which case the runs go on without it.
altrep_floor_library <- function() {
  directory <- file.path("build", "altrep_floor", as.character(getRversion()))
  library_path <- file.path(directory, paste0("altrep_floor", .Platform$dynlib.ext))
  source_path <- "bench/altrep_floor.c"
  if (!file.exists(library_path) || file.mtime(library_path) < file.mtime(source_path)) {
    dir.create(directory, recursive = TRUE, showWarnings = FALSE)
    work <- tempfile("altrep_floor")
    dir.create(work)
    on.exit(unlink(work, recursive = TRUE), add = TRUE)
    file.copy(source_path, work)
    r_binary <- file.path(R.home("bin"), "R")
    status <- system2(r_binary, c("CMD", "SHLIB", shQuote(file.path(work, "altrep_floor.c"))),
                      stdout = FALSE, stderr = FALSE)
    built <- file.path(work, paste0("altrep_floor", .Platform$dynlib.ext))
    if (status != 0 || !file.exists(built)) {
      message("[bench] could not build ", source_path, ": the minimal ALTREP vector is left out")
      return(NULL)
    }
    file.copy(built, library_path, overwrite = TRUE)
  }
  normalizePath(library_path)
}

# The machine's limits for `size` bytes from bench/physical_limit.cpp (built
# on first use), `reps` repeats: a data frame of metric, case, size_bytes,
# value, unit.
physical_limit <- function(size, reps) {
  binary <- file.path("build", "physical_limit")
  if (!file.exists(binary) ||
      file.mtime(binary) < file.mtime("bench/physical_limit.cpp")) {
    dir.create("build", showWarnings = FALSE)
    status <- system2("g++", c("-O2", "-std=c++17", "-pthread", "-o", binary,
                                   "bench/physical_limit.cpp"))
    if (status != 0) stop("could not build bench/physical_limit.cpp")
  }
  out <- system2(binary, c(format(size, scientific = FALSE), reps), stdout = TRUE)
  utils::read.csv(text = out, stringsAsFactors = FALSE)
}
