# Bytes serialize() writes for a shared object: what travels to a worker.
run <- function(ctx) {
  for (s in ctx$usable("serialized_size")) {
    for (size in ctx$sizes) {
      handle <- s$share(runif(size / 8))
      ctx$record("serialized_size", "double vector", s$name, size,
                 length(serialize(s$object(handle), NULL)), "bytes")
      s$release(handle)
    }
  }
  for (size in ctx$sizes) {
    ctx$record("serialized_size", "double vector", "ordinary", size,
               length(serialize(runif(size / 8), NULL)), "bytes")
  }
  df <- data.frame(a = runif(1e6), b = sample(letters, 1e6, TRUE), c = 1:1e6)
  ctx$record("serialized_size", "data frame, 3 columns", "shmr", as.numeric(object.size(df)),
             length(serialize(share(df), NULL)), "bytes")
}
