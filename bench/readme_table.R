# Rewrites the README's performance section (between the bench markers) from
# bench/results/latest.csv: the standing targets with shmr's figures, then
# shmr against every peer and against the baselines, as ratios of figures
# measured in the same run.
#   Rscript bench/readme_table.R [CSV] [README]
args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "bench/results/latest.csv"
readme <- if (length(args) >= 2) args[2] else "README.md"
r <- utils::read.csv(csv, stringsAsFactors = FALSE)

# --- reading the results ----------------------------------------------------

# Rows of metric / cases / system with a value, at `size` ("largest": the
# largest size measured for that metric; "all": every size).
rows_of <- function(metric, cases, system, size = "largest") {
  d <- r[r$metric == metric & r$case %in% cases & r$system == system & !is.na(r$value), ]
  if (!nrow(d) || identical(size, "all") || all(is.na(d$size_bytes))) return(d)
  sizes <- r$size_bytes[r$metric == metric]
  wanted <- if (identical(size, "largest")) max(sizes, na.rm = TRUE) else size
  d[!is.na(d$size_bytes) & d$size_bytes == wanted, ]
}
# One figure: the worst (largest) of the cases and sizes asked for.
figure <- function(metric, cases, system, size = "largest") {
  d <- rows_of(metric, cases, system, size)
  if (nrow(d)) max(d$value) else NA_real_
}
# Why a system has no figure: a "skipped" row, a reason in the unit of a
# row without a value (an error, "not a vector", ...) whose case names the
# same probe, or no row at all for the metric (the system lacks the feature).
missing_reason <- function(metric, cases, system) {
  if (!any(r$metric == metric & r$system == system)) return("unsupported")
  # A figure without its ordinary copy alongside: the system's object is
  # not an R vector (bigmemory), so there was nothing to copy.
  if (any(r$metric == metric & r$system == system & r$case %in% cases & !is.na(r$value))) {
    return("not a vector")
  }
  d <- r[r$metric == metric & r$system == system & is.na(r$value), ]
  if (any(d$case == "skipped")) return("skipped")
  probe <- sub(" time$", "", d$case)
  same <- vapply(probe, function(p) any(startsWith(cases, p)), TRUE)
  if (any(same)) return(sub(":.*$", "", d$unit[same][1]))
  "n/a"
}
# The physical limit for writing into fresh shm pages: the fastest of the
# three ways physical_limit.cpp creates them (ftruncate, fallocate, fallocate
# + MAP_POPULATE), so the ratio is against the best the machine does.
fresh_shm_limit <- function(size) {
  d <- r[r$metric == "memcpy_fresh_shm" & r$unit == "GB/s" & r$size_bytes == size, ]
  if (nrow(d)) max(d$value) else NA_real_
}

# --- formatting ------------------------------------------------------------

fmt <- function(v, digits = 3) {
  if (is.na(v) || !is.finite(v)) return("n/a")
  trimws(format(signif(v, digits), big.mark = ",", scientific = abs(v) < 1e-3 && v != 0))
}
mb_label <- function(bytes) paste(vapply(bytes / 2^20, fmt, "", digits = 4), "MB")
# Memory growth under this is noise (a few pages) and shown as about zero.
negligible_mb <- 0.1

# shmr's advantage over another system: how many times better shmr's figure
# is; above 1 shmr is better, below 1 (bold) shmr is worse.
ratio_text <- function(shmr, other, better, kind) {
  if (is.na(shmr) || is.na(other)) return("")
  if (kind == "memory") {
    shmr <- max(shmr, 0)
    other <- max(other, 0)
    if (shmr < negligible_mb && other < negligible_mb) return("(both ~0)")
    if (shmr < negligible_mb) return("(shmr ~0)")
    if (other < negligible_mb) return("(**shmr grows, this ~0**)")
  }
  a <- if (better == "lower") other / shmr else shmr / other
  shown <- if (a < 10) sprintf("%.2f", a) else fmt(a, 2)
  # Bold when shmr is worse by what the reader sees (0.996 shows as 1.00).
  text <- paste0(shown, "x")
  sprintf("(%s)", if (as.numeric(gsub(",", "", shown)) < 1) paste0("**", text, "**") else text)
}
# A system's figure with shmr's advantage over it; `v` defaults to the
# system's figure for the measure.
cell <- function(spec, system, shmr, v = spec$value(system)) {
  if (is.na(v)) return(missing_reason(spec$metric, spec$cases, system))
  trimws(paste(fmt(v), ratio_text(shmr, v, spec$better, spec$kind)))
}
table_lines <- function(header, rows) {
  c(paste0("| ", paste(header, collapse = " | "), " |"),
    paste0("|", paste(rep("---", length(header)), collapse = "|"), "|"),
    vapply(rows, function(cells) paste0("| ", paste(cells, collapse = " | "), " |"), ""))
}

# --- what is compared --------------------------------------------------------

# A measure: its label, where its figures are, which direction is better for
# shmr ("lower" or "higher"), and its kind ("memory" figures near zero are
# not divided). `size`: "largest", or "all" for the worst over sizes.
measure <- function(label, metric, cases, better = "lower", kind = "time", size = "largest") {
  list(label = label, metric = metric, cases = cases, better = better, kind = kind,
       value = function(system) figure(metric, cases, system, size))
}
# A warm time relative to the ordinary copy timed alongside it in the same
# consumer (04-consumer-access.R): comparable between systems measured at
# different moments of a drifting machine, unlike the times themselves.
relative_measure <- function(label, metric, case) {
  m <- measure(label, metric, case)
  m$value <- function(system) {
    figure(metric, case, system) / figure(metric, paste0(case, ", ordinary copy alongside"), system)
  }
  m
}
big <- suppressWarnings(max(r$size_bytes[r$metric == "element_access"], na.rm = TRUE))
scan <- suppressWarnings(max(r$size_bytes[r$metric == "full_scan"], na.rm = TRUE))
share_size <- suppressWarnings(max(r$size_bytes[r$metric == "share_throughput"], na.rm = TRUE))
strings_size <- suppressWarnings(max(r$size_bytes[r$metric == "strings"], na.rm = TRUE))
frame_size <- suppressWarnings(max(r$size_bytes[r$metric == "dataframe_workers"], na.rm = TRUE))
matrix_size <- suppressWarnings(max(r$size_bytes[r$metric == "parallel_colmeans"], na.rm = TRUE))
fit_size <- suppressWarnings(max(r$size_bytes[r$metric == "deep_share"], na.rm = TRUE))
machines_size <- suppressWarnings(max(r$size_bytes[r$metric == "several_machines"], na.rm = TRUE))

peer_measures <- list(
  measure(sprintf("share throughput, GB/s (%s)", mb_label(share_size)), "share_throughput",
          "double vector", better = "higher", kind = "rate"),
  measure("map time, worst size, us", "map_time", "double vector", size = "all"),
  measure("`x[5]`, ms", "element_access", "x[5] time"),
  measure("`x[[7]]`, ms", "element_access", "x[[7]] time"),
  measure("`x[1:10]`, ms", "element_access", "x[1:10] time"),
  measure("element access memory growth, worst, MB", "element_access",
          paste(c("x[5]", "x[[7]]", "x[1:10]"), "memory growth"), kind = "memory"),
  measure("`range(x)` first call, ms", "writable_pointer_read", "range(x) time"),
  relative_measure("`range(x)` warm, relative to an ordinary copy", "writable_pointer_read",
                   "range(x) time, warm"),
  measure("`range(x)` memory growth, MB", "writable_pointer_read", "range(x) memory growth",
          kind = "memory"),
  relative_measure("`x == 5` warm, relative to an ordinary copy", "writable_pointer_read",
                   "x == 5 time, warm"),
  measure("`x == 5` memory growth, MB", "writable_pointer_read", "x == 5 memory growth",
          kind = "memory"),
  relative_measure("`identical(x, y)` warm, relative to an ordinary copy", "writable_pointer_read",
                   "identical(x, y) time, warm"),
  measure("`identical(x, y)` memory growth, MB", "writable_pointer_read",
          "identical(x, y) memory growth", kind = "memory"),
  measure("`x[1] <- 0`, ms", "one_write", "x[1] <- 0 time"),
  measure("`x[1] <- 0` memory growth, MB", "one_write", "x[1] <- 0 memory growth", kind = "memory"),
  measure("`sum(x)` first touch, ms", "full_scan", "sum(x) first touch"),
  relative_measure("`sum(x)` warm, relative to an ordinary copy", "full_scan", "sum(x) warm"),
  measure("serialized size, worst size, bytes", "serialized_size", "double vector",
          kind = "size", size = "all"),
  measure(sprintf("strings (%s): share, s", mb_label(strings_size)), "strings", "share time"),
  measure("strings: `x[12345]`, ms", "strings", "x[12345] time"),
  measure("strings: `x[12345]` memory growth, MB", "strings", "x[12345] memory growth",
          kind = "memory"),
  measure("strings: radix `sort()`, s", "strings", "sort(x, method = 'radix') time"),
  measure(sprintf("data frame (%s) to 2 workers, bootstrap, s", mb_label(frame_size)),
          "dataframe_workers", "time"),
  measure("data frame: private memory growth per worker, MB", "dataframe_workers",
          "private memory growth per worker", kind = "memory")
)
peers <- setdiff(unique(r$system[r$metric %in% c("share_throughput", "map_time", "element_access")]),
                 c("shmr", "physical_limit", "serialize", "ordinary"))

# Baselines: measures where shmr is compared with base R or the machine.
# `shmr` names shmr's system in that metric; `others` the baselines: system
# names, or `alongside` for the ordinary copy timed in shmr's own consumer,
# alternating with the shared vector (04-consumer-access.R).
alongside <- "ordinary copy, same process"
# The machine's first sequential read of a fresh mapping of populated shm
# pages (physical_limit.cpp), at the size of the vector summed.
first_read <- "machine: first read of a fresh shm mapping"
baseline <- function(m, others, shmr = "shmr") {
  m$shmr <- shmr
  m$others <- others
  m
}
# The figure of baseline `other` for measure m.
baseline_value <- function(m, other) {
  if (identical(other, alongside)) {
    figure(m$metric, paste0(m$cases, ", ordinary copy alongside"), m$shmr)
  } else if (identical(other, first_read)) {
    d <- r[r$metric == "read_seq_shm" & r$case == "first_touch" & r$unit == "s" &
             r$size_bytes %in% scan, ]
    if (nrow(d)) d$value[1] * 1e3 else NA_real_
  } else {
    m$value(other)
  }
}
pool <- "shmr pool_lapply"
baseline_measures <- list(
  baseline(measure(sprintf("share throughput, GB/s (%s)", mb_label(share_size)), "share_throughput",
                   "double vector", better = "higher", kind = "rate"), "serialize"),
  baseline(measure("`x[5]`, ms", "element_access", "x[5] time"), "ordinary"),
  baseline(measure("`range(x)` first call, ms", "writable_pointer_read", "range(x) time"), "ordinary"),
  baseline(measure("`range(x)` warm, ms", "writable_pointer_read", "range(x) time, warm"),
           c(alongside, "ordinary")),
  baseline(measure("`x == 5` warm, ms", "writable_pointer_read", "x == 5 time, warm"),
           c(alongside, "ordinary")),
  baseline(measure("`identical(x, y)` warm, ms", "writable_pointer_read",
                   "identical(x, y) time, warm"), c(alongside, "ordinary")),
  baseline(measure("`x[1] <- 0`, ms", "one_write", "x[1] <- 0 time"), "ordinary"),
  baseline(measure("`sum(x)` first touch, ms", "full_scan", "sum(x) first touch"),
           c("ordinary", first_read)),
  baseline(measure("`sum(x)` warm, ms", "full_scan", "sum(x) warm"), c(alongside, "ordinary")),
  baseline(measure("serialized size, bytes", "serialized_size", "double vector", kind = "size"),
           "ordinary"),
  baseline(measure("strings: radix `sort()`, s", "strings", "sort(x, method = 'radix') time"),
           "ordinary"),
  baseline(measure(sprintf("data frame (%s) to 2 workers, bootstrap, s", mb_label(frame_size)),
                   "dataframe_workers", "time"), "plain (clusterExport)"),
  baseline(measure("data frame: private memory growth per worker, MB", "dataframe_workers",
                   "private memory growth per worker", kind = "memory"), "plain (clusterExport)"),
  baseline(measure(sprintf("column means of a %s matrix, 2 workers, s", mb_label(matrix_size)),
                   "parallel_colmeans", "time"),
           c("parLapply + clusterExport", "mclapply (fork)", "mirai_map (.args)"),
           shmr = "shmr pool_apply"),
  baseline(measure("column means: private memory growth per worker, MB", "parallel_colmeans",
                   "private memory growth per worker", kind = "memory"),
           c("parLapply + clusterExport", "mclapply (fork)", "mirai_map (.args)"),
           shmr = "shmr pool_apply"),
  baseline(measure("10,000 tiny tasks, ms per task", "dispatch", "10,000 tiny tasks, per task"),
           c("parLapply", "mirai_map"), shmr = pool),
  baseline(measure("two results returned from workers, s", "return_results", "two results"),
           c("parLapply", "mclapply (fork)", "mirai_map"), shmr = pool),
  baseline(measure(sprintf("lm fit (%s): `share(deep = TRUE)` against `serialize()`, s",
                           mb_label(fit_size)), "deep_share", "lm fit time"), "ordinary"),
  baseline(measure("lm fit: bytes a worker receives", "deep_share", "lm fit bytes sent",
                   kind = "size"), "ordinary"),
  # 13-several-machines.R: 2 simulated hosts x 2 mirai daemons.
  baseline(measure(sprintf("data frame (%s) to 2 hosts x 2 workers, `mirai_map()` `.args`, s",
                           mb_label(machines_size)), "several_machines", "time"),
           "mirai by value (.args)", shmr = "shmr (.args)"),
  baseline(measure("the same through `everywhere()`, s", "several_machines", "time"),
           "mirai by value (everywhere)", shmr = "shmr (everywhere)"),
  baseline(measure("several hosts: MB reaching each host", "several_machines", "bytes per host",
                   kind = "size"), "mirai by value (.args)", shmr = "shmr (.args)"),
  baseline(measure("several hosts: private memory growth per worker, MB", "several_machines",
                   "private memory growth per worker", kind = "memory"),
           "mirai by value (.args)", shmr = "shmr (.args)")
)

# --- the standing targets ----------------------------------------------------

yes_no <- function(ok) if (is.na(ok)) "n/a" else if (ok) "yes" else "**no**"
# shmr's warm time and that of the ordinary copy timed alongside it.
warm_pair <- function(metric, case) {
  c(shmr = figure(metric, case, "shmr"),
    ordinary = figure(metric, paste0(case, ", ordinary copy alongside"), "shmr"))
}
against_ordinary <- function(pair) {
  sprintf("%s ms against %s ms: %sx the time", fmt(pair[["shmr"]]), fmt(pair[["ordinary"]]),
          fmt(pair[["shmr"]] / pair[["ordinary"]], 2))
}
target_rows <- function() {
  out <- list()
  add <- function(target, measured, ok) out[[length(out) + 1L]] <<- c(target, measured, yes_no(ok))

  sizes <- sort(unique(r$size_bytes[r$metric == "share_throughput" & r$system == "shmr"]))
  share_ratios <- vapply(sizes, function(s) {
    figure("share_throughput", "double vector", "shmr", s) / fresh_shm_limit(s)
  }, 0)
  add("share at >= 0.8x of memcpy into fresh shm pages",
      paste0(sprintf("%s: %sx", mb_label(sizes), vapply(share_ratios, fmt, "", digits = 2)),
             collapse = ", "),
      if (length(share_ratios)) all(share_ratios >= 0.8) else NA)

  map_sizes <- sort(unique(r$size_bytes[r$metric == "map_time" & r$system == "shmr"]))
  map_times <- vapply(map_sizes, function(s) figure("map_time", "double vector", "shmr", s), 0)
  add("`map_shared()` under 100 us at every size",
      paste0(sprintf("%s: %s us", mb_label(map_sizes), vapply(map_times, fmt, "")), collapse = ", "),
      if (length(map_times)) all(map_times < 100) else NA)

  probes <- c("x[5]", "x[[7]]", "x[1:10]")
  times <- vapply(paste(probes, "time"), function(cs) figure("element_access", cs, "shmr"), 0)
  growth <- figure("element_access", paste(probes, "memory growth"), "shmr")
  add(sprintf("element access under 1 ms and 1 MB memory growth (%s vector)", mb_label(big)),
      sprintf("%s; growth %s MB", paste(sprintf("`%s` %s ms", probes, vapply(times, fmt, "")),
                                        collapse = ", "), fmt(growth)),
      all(times < 1) && growth < 1)

  reads <- c("range(x)", "x == 5", "identical(x, y)")
  for (probe in reads) {
    pair <- warm_pair("writable_pointer_read", paste(probe, "time, warm"))
    add(sprintf("`%s` within 1.2x of an ordinary vector (warm, %s)", probe, mb_label(scan)),
        against_ordinary(pair), pair[["shmr"]] <= 1.2 * pair[["ordinary"]])
  }
  shmr_growth <- vapply(paste(reads, "memory growth"),
                        function(cs) figure("writable_pointer_read", cs, "shmr"), 0)
  plain_growth <- vapply(paste(reads, "memory growth"),
                         function(cs) figure("writable_pointer_read", cs, "ordinary"), 0)
  add("those reads do not materialise the vector (growth no more than an ordinary vector's)",
      paste(sprintf("`%s` %s MB (ordinary %s)", reads, vapply(shmr_growth, fmt, ""),
                    vapply(plain_growth, fmt, "")), collapse = ", "),
      all(shmr_growth <= plain_growth + 1))

  write_time <- figure("one_write", "x[1] <- 0 time", "shmr")
  add(sprintf("one write `x[1] <- 0` under 1 ms (%s vector)", mb_label(big)),
      sprintf("%s ms; growth %s MB", fmt(write_time),
              fmt(figure("one_write", "x[1] <- 0 memory growth", "shmr"))),
      write_time < 1)

  pair <- warm_pair("full_scan", "sum(x) warm")
  add(sprintf("warm `sum(x)` within 1.1x of an ordinary vector (%s)", mb_label(scan)),
      against_ordinary(pair), pair[["shmr"]] <= 1.1 * pair[["ordinary"]])

  bytes <- figure("serialized_size", "double vector", "shmr", "all")
  add("serialized size under 200 bytes", sprintf("%s bytes at every size", fmt(bytes)), bytes < 200)

  worker_growth <- function(metric, system, size) {
    g <- max(figure(metric, "private memory growth per worker", system), 0)
    sprintf("%s MB of %s (%s%%)", fmt(g), mb_label(size), fmt(100 * g * 2^20 / size, 2))
  }
  frame <- max(figure("dataframe_workers", "private memory growth per worker", "shmr"), 0)
  colmeans <- max(figure("parallel_colmeans", "private memory growth per worker", "shmr pool_apply"), 0)
  add("per-worker private memory growth under 1% of the shared object",
      sprintf("data frame bootstrap: %s; matrix column means: %s",
              worker_growth("dataframe_workers", "shmr", frame_size),
              worker_growth("parallel_colmeans", "shmr pool_apply", matrix_size)),
      frame * 2^20 < 0.01 * frame_size && colmeans * 2^20 < 0.01 * matrix_size)
  out
}

# --- the section -------------------------------------------------------------

peer_rows <- lapply(peer_measures, function(m) {
  shmr <- m$value("shmr")
  c(m$label, fmt(shmr), vapply(peers, function(p) cell(m, p, shmr), ""))
})
baseline_rows <- list()
for (m in baseline_measures) {
  shmr <- m$value(m$shmr)
  for (other in m$others) {
    baseline_rows[[length(baseline_rows) + 1L]] <-
      c(m$label, m$shmr, fmt(shmr), other, cell(m, other, shmr, baseline_value(m, other)))
  }
}
limit_rows <- lapply(sort(unique(r$size_bytes[r$metric == "share_throughput" & r$system == "shmr"])),
                     function(s) {
  shmr <- figure("share_throughput", "double vector", "shmr", s)
  touched <- r$value[r$metric == "memcpy_touched" & r$unit == "GB/s" & r$size_bytes == s][1]
  c(mb_label(s), fmt(shmr), fmt(fresh_shm_limit(s)), fmt(shmr / fresh_shm_limit(s), 2),
    fmt(touched))
})
skipped <- r[r$case == "skipped", ]
skipped_lines <- unique(sprintf("- %s (%s): %s", skipped$system, skipped$metric, skipped$unit))

# The plots in the results directory, linked from the README.
plots <- sort(list.files(dirname(csv), pattern = "\\.png$"))
plot_links <- if (length(plots)) {
  c("", paste0("Plots: ", paste(sprintf("[%s](%s)", sub("\\.png$", "", plots),
                                        file.path(dirname(csv), plots)), collapse = ", "), "."))
}

section <- c(
  "<!-- bench:start -->",
  sprintf("Measured by `make bench%s` on %s with R %s on 2 cores shared with other work:",
          if (big < 2^30) "-quick" else "", r$date[1], r$r_version[1]),
  "medians of repeated runs, ratios of figures taken in the same run (absolute times on this",
  "machine are noisy; differences within about 10% are noise). Element access and the write",
  sprintf("are on a %s double vector, the whole-vector reads and `sum()` on a %s one, each",
          mb_label(big), mb_label(scan)),
  "in a consumer process that maps it. Memory growth is the growth of `Anonymous` in",
  "`/proc/<pid>/smaps_rollup`: memory private to the process (its heap and pages copied on",
  "write), not the shared pages it reads (`bench/README.md` says why).",
  "",
  "**Standing targets** (shmr alone; \"ordinary\" is an ordinary copy of the vector timed",
  "alternately with the shared one in the same process):",
  "",
  table_lines(c("target", "measured", "met?"), target_rows()),
  "",
  "**shmr against the other shared-memory packages.** Each cell is the package's figure and,",
  "in brackets, **shmr's advantage**: the package's figure divided by shmr's for times, sizes",
  "and memory, shmr's divided by the package's for throughput. **Above 1x shmr is better;",
  "below 1x (bold) shmr is worse.** Memory growth under 0.1 MB counts as about zero (~0).",
  "",
  table_lines(c("measure", "shmr", peers), peer_rows),
  "",
  "**shmr against base R and the machine**, same convention (above 1x shmr is better):",
  "",
  table_lines(c("measure", "shmr as", "shmr", "baseline", "baseline's figure (shmr's advantage)"),
              baseline_rows),
  "",
  "**Share throughput against the physical limit** (`bench/physical_limit.cpp`): memcpy into",
  "fresh shm pages, the fastest of ftruncate, fallocate and fallocate + MAP_POPULATE; memcpy",
  "into already-touched memory, for scale.",
  "",
  table_lines(c("size", "shmr, GB/s", "memcpy into fresh shm, GB/s", "shmr / limit",
                "memcpy into touched memory, GB/s"), limit_rows),
  if (length(skipped_lines)) c("", "Not measured in this run:", "", skipped_lines),
  plot_links,
  "<!-- bench:end -->"
)
text <- readLines(readme)
start <- grep("<!-- bench:start -->", text, fixed = TRUE)
end <- grep("<!-- bench:end -->", text, fixed = TRUE)
if (length(start) != 1L || length(end) != 1L) stop("README has no bench markers")
writeLines(c(text[seq_len(start - 1L)], section, text[-seq_len(end)]), readme)
message("README performance section updated from ", csv)
