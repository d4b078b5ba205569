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
  ctx$sizes <- if (quick) c(1, 64, 256) * 2^20 else c(1, 64, 512, 2048) * 2^20
  ctx$reps <- if (quick) 3L else 5L
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

anonymous_bytes <- function(pid = Sys.getpid()) {
  lines <- readLines(sprintf("/proc/%d/smaps_rollup", pid))
  line <- grep("^Anonymous:", lines, value = TRUE)
  as.numeric(sub("^Anonymous:\\s*([0-9]+) kB.*$", "\\1", line)) * 1024
}

# A consumer process with the adapters loaded; close it with $close().
consumer <- function() {
  session <- callr::r_session$new()
  session$run(function(helpers, systems_file) {
    suppressPackageStartupMessages(library(shmr))
    source(helpers)
    source(systems_file)
    assign("systems", systems, globalenv())
    # Load every peer now, so that no timing includes loading a package.
    for (s in systems) {
      if (!is.null(s$package)) suppressPackageStartupMessages(requireNamespace(s$package, quietly = TRUE))
    }
    invisible(gc())
    NULL
  }, list(helpers = normalizePath("bench/helpers.R"),
          systems_file = Sys.getenv("SHMR_BENCH_SYSTEMS", normalizePath("bench/systems.R"))))
  session
}

# Runs f(...) once in a fresh consumer process, which is closed afterwards.
in_consumer <- function(f, args) {
  worker <- consumer()
  on.exit(worker$close())
  worker$run(f, args)
}

read_of <- function(s) if (is.null(s$read)) function(obj, i) obj[i] else s$read
sum_of <- function(s) if (is.null(s$sum)) function(obj) sum(obj) else s$sum

mb <- function(bytes) bytes / 2^20

# Bytes the kernel says can be allocated without swapping.
available_memory <- function() {
  line <- grep("^MemAvailable:", readLines("/proc/meminfo"), value = TRUE)
  as.numeric(sub("^MemAvailable:\\s*([0-9]+) kB.*$", "\\1", line)) * 1024
}
