# How fast each system writes a double vector into shared memory (GB/s),
# against the machine's limits (bench/physical_limit.cpp: memcpy into fresh
# shm pages, into touched memory, sequential reads) and base R's serialize()
# into memory, whose output's length is also recorded as the ordinary
# vector's serialized size.
#
# Each repeat runs the physical limit and every system once, in turn, so
# that the machine's drift (it is shared) affects them all alike.
run <- function(ctx) {
  usable <- ctx$usable("share_throughput")
  for (size in ctx$sizes) {
    x <- ctx$vector(size)
    reps <- ctx$reps_at(size)
    limits <- list()
    times <- matrix(NA_real_, reps, length(usable), dimnames = list(NULL, names(usable)))
    for (rep in seq_len(reps)) {
      limits[[rep]] <- physical_limit(size, 1L)
      for (s in usable) times[rep, s$name] <- share_seconds(s, x)
    }
    limits <- do.call(rbind, limits)
    for (key in unique(paste(limits$metric, limits$case, limits$unit, sep = "\r"))) {
      part <- limits[paste(limits$metric, limits$case, limits$unit, sep = "\r") == key, ]
      ctx$record(part$metric[1], part$case[1], "physical_limit", size, median(part$value),
                 part$unit[1])
    }
    for (s in usable) {
      t <- median(times[, s$name])
      ctx$record("share_throughput", "double vector", s$name, size, size / 1e9 / t, "GB/s")
      ctx$record("share_time", "double vector", s$name, size, t, "s")
    }
    if (size <= 2^20 && "shmr" %in% names(usable)) {
      ctx$record("share_time", "double vector, back to back", "shmr", size,
                 back_to_back_seconds(usable$shmr, x, reps), "s")
    }
    bytes <- NA
    t <- median_seconds(function() bytes <<- length(serialize(x, NULL)), reps)
    ctx$record("share_throughput", "double vector", "serialize", size, size / 1e9 / t, "GB/s")
    ctx$record("serialized_size", "double vector", "ordinary", size, bytes, "bytes")
    rm(x)
  }
  ctx$drop_vector()
}

# Seconds system s takes to share x; the shared copy is freed afterwards, by
# a full collection (`full`) or a young-generation one.
share_seconds <- function(s, x, full = TRUE) {
  t0 <- Sys.time()
  handle <- s$share(x)
  t <- as.numeric(Sys.time() - t0, units = "secs")
  s$release(handle)
  rm(handle)
  invisible(gc(full = full))
  t
}

# The median of `reps` small shares made one after the other, as a loop
# makes them: each freed by a young-generation collection only. On the
# machine of the README's figures, a 1 MB share right after a full
# collection (share_seconds()) took 2.5 to 3x as long as one after a
# young-generation collection, and the time went to the kernel's copy into
# the new pages (strace: splice() 615 against 356 us, vmsplice() 152
# against 69). The first share, after the full collections before it, is
# not counted.
back_to_back_seconds <- function(s, x, reps) {
  share_seconds(s, x, full = FALSE)
  median(vapply(seq_len(reps), function(i) share_seconds(s, x, full = FALSE), 0))
}
