# Bytes serialize() writes for a shared data frame sent to a worker, with 2
# and with 100 columns, for every system that shares data frames and for the
# ordinary frame. The shared double vectors of every system are measured by
# 03-map-time.R, on the objects it shares, and ordinary vectors by
# 02-share-throughput.R.
run <- function(ctx) {
  rows <- 1e5
  frames <- list(
    "data frame, 2 columns" = data.frame(a = runif(rows), b = seq_len(rows)),
    "data frame, 100 columns" = as.data.frame(
      setNames(lapply(seq_len(100), function(i) runif(rows)), paste0("V", seq_len(100))))
  )
  for (case in names(frames)) {
    df <- frames[[case]]
    size <- as.numeric(object.size(df))
    for (s in ctx$usable("serialized_size", kind = "data.frame")) {
      handle <- s$share(df)
      bytes <- tryCatch(length(serialize(s$object(handle), NULL)), error = function(e) e)
      s$release(handle)
      rm(handle)
      if (inherits(bytes, "error")) {
        ctx$record("serialized_size", case, s$name, size, NA,
                   paste("error:", conditionMessage(bytes)))
      } else {
        ctx$record("serialized_size", case, s$name, size, bytes, "bytes")
      }
    }
    ctx$record("serialized_size", case, "ordinary", size, length(serialize(df, NULL)), "bytes")
  }
  invisible(gc())
}
