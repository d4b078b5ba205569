# The benchmark driver: Rscript bench/run.R [--quick] [--out DIR] [--only REGEX]
# Runs every metric in bench/metrics/ (or those whose file name matches
# REGEX), writes DIR/latest.csv and the plots.
args <- commandArgs(trailingOnly = TRUE)
quick <- "--quick" %in% args
option <- function(flag, default) if (flag %in% args) args[which(args == flag) + 1L] else default
out_dir <- option("--out", "bench/results")
only <- option("--only", "")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

suppressPackageStartupMessages(library(shmr))
source("bench/helpers.R")
# Another adapters file can be given, e.g. to benchmark a subset.
systems_file <- normalizePath(Sys.getenv("SHMR_BENCH_SYSTEMS", "bench/systems.R"))
Sys.setenv(SHMR_BENCH_SYSTEMS = systems_file)
source(systems_file)
ctx <- new_context(quick = quick, out_dir = out_dir, systems = systems)

metric_files <- sort(list.files("bench/metrics", pattern = "\\.R$", full.names = TRUE))
metric_files <- metric_files[grepl(only, basename(metric_files))]
for (file in metric_files) {
  env <- new.env(parent = globalenv())
  sys.source(file, envir = env)
  started <- Sys.time()
  message(sprintf("[bench] %s", basename(file)))
  tryCatch(env$run(ctx), error = function(e) {
    message(sprintf("[bench] %s failed: %s", basename(file), conditionMessage(e)))
    ctx$record(sub("\\.R$", "", basename(file)), "failed", "all", NA, NA, conditionMessage(e))
  })
  message(sprintf("[bench]   %.1f s", as.numeric(Sys.time() - started, units = "secs")))
  # Written after every metric, so a run that dies keeps what it measured.
  utils::write.csv(ctx$results(), file.path(out_dir, "latest.csv"), row.names = FALSE)
}
results <- ctx$results()
source("bench/plots.R")
make_plots(results, out_dir)
message(sprintf("[bench] %d rows written to %s", nrow(results), file.path(out_dir, "latest.csv")))
