# Merges the rows of a partial run (bench/run.R --only ... --out DIR) into
# the full results: a row of the full results is replaced when the partial
# run measured the same metric, case, system and size, and kept otherwise,
# so that a metric file which also records another metric's rows (03
# records serialized sizes beside map times) never drops the rows it did
# not measure again.
#   Rscript bench/merge_results.R PARTIAL_CSV [FULL_CSV]
args <- commandArgs(trailingOnly = TRUE)
if (!length(args)) stop("usage: Rscript bench/merge_results.R PARTIAL_CSV [FULL_CSV]", call. = FALSE)
full_csv <- if (length(args) >= 2) args[2] else "bench/results/latest.csv"
full <- utils::read.csv(full_csv, stringsAsFactors = FALSE)
partial <- utils::read.csv(args[1], stringsAsFactors = FALSE)
key <- function(d) paste(d$metric, d$case, d$system, d$size_bytes, sep = "\r")
replaced <- key(full) %in% key(partial)
merged <- rbind(full[!replaced, ], partial)
utils::write.csv(merged, full_csv, row.names = FALSE)
message(sprintf("merged %d rows into %s (%d replaced, %d new)", nrow(partial), full_csv,
                sum(replaced), nrow(partial) - sum(replaced)))
