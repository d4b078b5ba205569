# Character vectors: share time and element access in a consumer. Whole-
# vector operations (radix sort() among them) are 14-string-ops.R.
run <- function(ctx) {
  n <- if (ctx$quick) 1e6 else 1e7
  x <- sprintf("id_%d_%s", sample.int(n), sample(c("alpha", "beta", "gamma"), n, TRUE))
  size <- as.numeric(object.size(x))
  for (s in ctx$usable("strings", kind = "character")) {
    t0 <- Sys.time()
    handle <- s$share(x)
    ctx$record("strings", "share time", s$name, size, as.numeric(Sys.time() - t0, units = "secs"), "s")
    got <- in_consumer(function(name, token) {
      s <- systems[[name]]
      obj <- s$map(token)
      invisible(gc())
      before <- anonymous_bytes()
      t_elt <- seconds(function() obj[12345])
      growth <- anonymous_bytes() - before
      c(elt = t_elt, growth = growth)
    }, list(name = s$name, token = s$token(handle)), system = s$name)
    ctx$record("strings", "x[12345] time", s$name, size, got[["elt"]] * 1e3, "ms")
    ctx$record("strings", "x[12345] memory growth", s$name, size, got[["growth"]] / 2^20, "MB")
    s$release(handle)
  }
}
