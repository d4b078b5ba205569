# Rewrites the README's performance section (between the bench markers) from
# bench/results/latest.csv: each standing target, shmr's figure, and every
# peer's figure from the same run.
#   Rscript bench/readme_table.R [CSV] [README]
args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "bench/results/latest.csv"
readme <- if (length(args) >= 2) args[2] else "README.md"
r <- utils::read.csv(csv, stringsAsFactors = FALSE)

pick <- function(metric, case, system, size = NULL) {
  d <- r[r$metric == metric & r$case == case & r$system == system & !is.na(r$value), ]
  if (!is.null(size)) d <- d[!is.na(d$size_bytes) & d$size_bytes == size, ]
  if (!nrow(d)) return(NA_real_)
  d$value[which.max(ifelse(is.na(d$size_bytes), 0, d$size_bytes))]
}
largest <- function(metric) max(r$size_bytes[r$metric == metric], na.rm = TRUE)
fmt <- function(x, digits = 3) {
  vapply(x, function(v) {
    if (is.na(v) || !is.finite(v)) return("n/a")
    trimws(format(signif(v, digits), big.mark = ",", scientific = abs(v) < 1e-3 && v != 0))
  }, "")
}
peers <- setdiff(unique(r$system[r$metric %in% c("share_throughput", "consumer_access",
                                                  "element_access", "map_time")]),
                 c("shmr", "physical_limit", "serialize", "ordinary"))

share_size <- largest("share_throughput")
big <- suppressWarnings(max(r$size_bytes[r$metric == "element_access"], na.rm = TRUE))
limit <- pick("memcpy_fresh_shm", "fallocate", "physical_limit", share_size)
map_max <- function(s) suppressWarnings(max(r$value[r$metric == "map_time" & r$system == s]))
ratio <- function(a, b) a / b

line <- function(target, goal, shmr, peer_fun) {
  cells <- c(target, goal, shmr, vapply(peers, function(p) fmt(peer_fun(p)), ""))
  paste0("| ", paste(cells, collapse = " | "), " |")
}
rows <- c(
  line("share throughput, GB/s (ratio to memcpy into fresh shm pages)", ">= 0.8x",
       sprintf("%s (%sx of %s)", fmt(pick("share_throughput", "double vector", "shmr", share_size)),
               fmt(ratio(pick("share_throughput", "double vector", "shmr", share_size), limit), 2),
               fmt(limit)),
       function(p) pick("share_throughput", "double vector", p, share_size)),
  line("map time, worst size, us", "< 100", fmt(map_max("shmr")), map_max),
  line("x[5] in a consumer, ms", "< 1", fmt(pick("element_access", "x[5] time", "shmr")),
       function(p) pick("element_access", "x[5] time", p)),
  line("x[5] memory growth, MB", "< 1", fmt(pick("element_access", "x[5] memory growth", "shmr")),
       function(p) pick("element_access", "x[5] memory growth", p)),
  line("x[[7]] in a consumer, ms", "< 1", fmt(pick("element_access", "x[[7]] time", "shmr")),
       function(p) pick("element_access", "x[[7]] time", p)),
  line("range(x) warm, ratio to an ordinary vector", "<= 1.2x",
       fmt(ratio(pick("writable_pointer_read", "range(x) time, warm", "shmr"),
                 pick("writable_pointer_read", "range(x) time, warm", "ordinary")), 2),
       function(p) ratio(pick("writable_pointer_read", "range(x) time, warm", p),
                         pick("writable_pointer_read", "range(x) time, warm", "ordinary"))),
  line("x == 5 warm, ratio to an ordinary vector", "<= 1.2x",
       fmt(ratio(pick("writable_pointer_read", "x == 5 time, warm", "shmr"),
                 pick("writable_pointer_read", "x == 5 time, warm", "ordinary")), 2),
       function(p) ratio(pick("writable_pointer_read", "x == 5 time, warm", p),
                         pick("writable_pointer_read", "x == 5 time, warm", "ordinary"))),
  line("range(x) first call (pages first touched), ms", "-",
       sprintf("%s (ordinary %s)", fmt(pick("writable_pointer_read", "range(x) time", "shmr")),
               fmt(pick("writable_pointer_read", "range(x) time", "ordinary"))),
       function(p) pick("writable_pointer_read", "range(x) time", p)),
  line("range(x) memory growth, MB (ordinary vector: c() copies it too)", "no extra copy",
       sprintf("%s (ordinary %s)", fmt(pick("writable_pointer_read", "range(x) memory growth", "shmr")),
               fmt(pick("writable_pointer_read", "range(x) memory growth", "ordinary"))),
       function(p) pick("writable_pointer_read", "range(x) memory growth", p)),
  line("x == 5 memory growth, MB (result included)", "no extra copy",
       sprintf("%s (ordinary %s)", fmt(pick("writable_pointer_read", "x == 5 memory growth", "shmr")),
               fmt(pick("writable_pointer_read", "x == 5 memory growth", "ordinary"))),
       function(p) pick("writable_pointer_read", "x == 5 memory growth", p)),
  line("one write x[1] <- 0, ms", "< 1", fmt(pick("one_write", "x[1] <- 0 time", "shmr")),
       function(p) pick("one_write", "x[1] <- 0 time", p)),
  line("one write, memory growth, MB", "about a page",
       fmt(pick("one_write", "x[1] <- 0 memory growth", "shmr")),
       function(p) pick("one_write", "x[1] <- 0 memory growth", p)),
  line("warm sum(x), ratio to an ordinary vector", "<= 1.1x",
       fmt(ratio(pick("full_scan", "sum(x) warm", "shmr"), pick("full_scan", "sum(x) warm", "ordinary")), 2),
       function(p) ratio(pick("full_scan", "sum(x) warm", p), pick("full_scan", "sum(x) warm", "ordinary"))),
  line("serialized size, bytes", "< 200",
       fmt(pick("serialized_size", "double vector", "shmr", largest("serialized_size"))),
       function(p) pick("serialized_size", "double vector", p, largest("serialized_size")))
)
header <- c(
  paste0("| ", paste(c(sprintf("measure (%s MB vector where it applies)",
                               format(big / 2^20, big.mark = ",")), "target", "shmr", peers),
                     collapse = " | "), " |"),
  paste0("|", paste(rep("---", 3 + length(peers)), collapse = "|"), "|")
)
parallel <- r[r$metric %in% c("parallel_colmeans", "dataframe_workers", "dispatch", "return_results") &
                !is.na(r$value), ]
parallel_rows <- c("| metric | case | system | value |", "|---|---|---|---|",
                   sprintf("| %s | %s | %s | %s %s |", parallel$metric, parallel$case, parallel$system,
                           fmt(parallel$value), parallel$unit))
skipped <- r[r$case == "skipped", ]
skipped_lines <- if (nrow(skipped)) {
  unique(sprintf("- %s: skipped (%s)", skipped$system, skipped$unit))
} else {
  character()
}
section <- c(
  "<!-- bench:start -->",
  sprintf("Measured by `make bench%s` on %s with R %s (2 cores; medians of repeated runs;",
          if (max(r$size_bytes, na.rm = TRUE) < 2^30) "-quick" else "", r$date[1], r$r_version[1]),
  "ratios taken within the same run). Memory growth is the growth of `Anonymous` in",
  "`/proc/<pid>/smaps_rollup` (pages private to the process: its heap and pages copied on write).",
  "", header, rows, "", "Parallel work (2 workers):", "", parallel_rows,
  if (length(skipped_lines)) c("", "Not measured in this run:", "", skipped_lines),
  "<!-- bench:end -->"
)
text <- readLines(readme)
start <- grep("<!-- bench:start -->", text, fixed = TRUE)
end <- grep("<!-- bench:end -->", text, fixed = TRUE)
if (length(start) != 1L || length(end) != 1L) stop("README has no bench markers")
writeLines(c(text[seq_len(start - 1L)], section, text[-seq_len(end)]), readme)
message("README performance section updated from ", csv)
