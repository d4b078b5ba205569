# Bytes serialize() writes for a shared data frame sent to a worker. The
# shared double vectors of every system are measured by 03-map-time.R, on
# the objects it shares, and ordinary vectors by 02-share-throughput.R.
run <- function(ctx) {
  df <- data.frame(a = runif(1e6), b = sample(letters, 1e6, TRUE), c = 1:1e6)
  shared <- share(df)
  on.exit(close(shared))
  ctx$record("serialized_size", "data frame, 3 columns", "shmr", as.numeric(object.size(df)),
             length(serialize(shared, NULL)), "bytes")
  ctx$record("serialized_size", "data frame, 3 columns", "ordinary", as.numeric(object.size(df)),
             length(serialize(df, NULL)), "bytes")
}
