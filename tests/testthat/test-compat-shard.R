# Code written for shard: its documented examples for shares, segments and
# pools, unchanged, and the defects shard shows.

test_that("shard's share/fetch/shared_info/share_open examples give the documented results", {
  # share()
  mat <- matrix(rnorm(1e4), nrow = 100)
  shared_mat <- share(mat)
  recovered <- fetch(shared_mat)
  expect_true(identical(mat, recovered))
  close(shared_mat)

  # fetch()
  x <- 1:100
  shared <- share(x)
  recovered <- fetch(shared)
  expect_true(identical(x, recovered))
  close(shared)

  # shared_info()
  shared <- share(1:100)
  info <- shared_info(shared)
  expect_true(all(c("path", "backing", "size", "readonly", "class_info", "segment_info") %in%
                    names(info)))
  expect_identical(info$class_info, list(type = "vector", mode = "integer", length = 100L))
  expect_identical(info$segment_info$path, info$path)
  expect_true(info$segment_info$owns)
  close(shared)

  # is_shared()
  expect_false(is_shared(1:10))
  shared <- share(1:10)
  expect_true(is_shared(shared))
  close(shared)

  # share_open()
  shared <- share(1:50)
  info <- shared_info(shared)
  reopened <- share_open(info$path, backing = "mmap")
  expect_identical(fetch(reopened), 1:50)
  close(reopened)
  close(shared)

  # materialize()
  shared <- share(1:100)
  data <- materialize(shared)
  expect_identical(data, 1:100)
  expect_false(is_shared(data))
  close(shared)
})

test_that("share() takes shard's arguments", {
  m <- matrix(1:6 + 0, 2, dimnames = list(c("a", "b"), NULL))
  for (backing in c("auto", "mmap", "shm")) {
    s <- share(m, backing = backing, readonly = TRUE, deep = FALSE, min_bytes = 64 * 1024 * 1024,
               cycle = "error", mode = "balanced")
    expect_identical(fetch(s), m, info = backing)
    expect_identical(shared_info(s)$class_info, list(type = "matrix", mode = "double", dim = 2:3))
    close(s)
  }
  expect_identical(shared_info(share(data.frame(a = 1:2)))$class_info$type, "data.frame")
  expect_identical(shared_info(share(list(1, "a")))$class_info,
                   list(type = "list", mode = "list", length = 2L))
})

test_that("shard's segment examples give the documented results", {
  seg <- segment_create(1024 * 1024)
  info <- segment_info(seg)
  expect_identical(info$size, 1024 * 1024)
  expect_true(info$owns)
  segment_close(seg)

  seg <- segment_create(1024, backing = "mmap")
  path <- segment_path(seg)
  expect_true(file.exists(path))
  seg2 <- segment_open(path, backing = "mmap", readonly = TRUE)
  expect_false(segment_info(seg2)$owns)
  segment_close(seg2, unlink = FALSE)
  expect_true(file.exists(path))
  segment_close(seg)
  expect_false(file.exists(path))

  seg <- segment_create(1024)
  segment_write(seg, as.integer(1:4), offset = 0)
  expect_identical(segment_read(seg, offset = 0, size = 16), writeBin(1:4, raw(), size = 4))
  segment_close(seg)

  seg <- segment_create(1024)
  expect_identical(segment_write(seg, as.integer(1:10), offset = 0), 40)
  segment_close(seg)

  seg <- segment_create(1024)
  segment_protect(seg)
  expect_error(segment_write(seg, as.raw(1)), "protected")
  segment_close(seg)

  seg <- segment_create(1024)
  expect_identical(segment_size(seg), 1024)
  segment_close(seg)

  seg <- segment_create(1024)
  for (advice in c("normal", "sequential", "random", "willneed", "dontneed")) {
    expect_true(segment_advise(seg, advice), info = advice)
  }
  expect_error(segment_advise(seg, "soon"), "should be one of")
  segment_close(seg)
  expect_error(segment_advise(seg, "normal"), "closed")
})

test_that("a segment written here is read through its path in another process", {
  seg <- segment_create(64, backing = "mmap")
  segment_write(seg, c(2.5, -1), offset = 8)
  got <- in_other_process(function(path) {
    other <- segment_open(path, backing = "mmap")
    on.exit(segment_close(other))
    readBin(segment_read(other, 8, 16), "double", n = 2)
  }, list(path = segment_path(seg)))
  expect_identical(got, c(2.5, -1))
  segment_close(seg)
})

test_that("shard's pool examples give the documented results", {
  skip_on_cran()
  skip_without_callr()
  p <- pool_create(2)
  on.exit(pool_stop(p), add = TRUE)
  status <- pool_status(p)
  expect_identical(nrow(status), 2L)
  expect_identical(status$status, c("ok", "ok"))
  expect_identical(pool_get(), p)
  result <- pool_lapply(1:4, function(x) x^2, pool = pool_get())
  expect_identical(result, list(1, 4, 9, 16))
  result <- pool_sapply(1:4, function(x) x^2, pool = pool_get())
  expect_identical(result, c(1, 4, 9, 16))
  pids <- status$pid
  pool_stop(timeout = 5)
  expect_null(pool_get())
  expect_false(any(vapply(pids, shmr:::process_alive, TRUE)))
})

test_that("rss_limit recycles a worker that grew past it", {
  skip_on_cran()
  skip_without_callr()
  expect_identical(shmr:::parse_bytes("2GB"), 2 * 1024^3)
  expect_identical(shmr:::parse_bytes(" 512 mb "), 512 * 1024^2)
  expect_identical(shmr:::parse_bytes(1e9), 1e9)
  expect_null(shmr:::parse_bytes(NULL))
  for (bad in list("lots", "2XB", -1, NA, c(1, 2))) {
    expect_error(pool_create(1, rss_limit = bad), "rss_limit", label = deparse(bad))
  }
  expect_error(pool_create(1, backend = "mirai", rss_limit = "1GB"), "psock")
  p <- pool_create(1, rss_limit = 1) # every worker is over 1 byte
  on.exit(pool_stop(p), add = TRUE)
  pids <- unlist(pool_lapply(1:2, function(i) Sys.getpid(), chunk_size = 1))
  expect_false(pids[1] == pids[2])
  status <- pool_status(p)
  expect_identical(status$recycled, 2L)
  expect_false(status$pid %in% pids)
  expect_identical(status$status, "ok")
  shmr:::wait_for_exit(pids, 10) # a replaced worker exits once its socket closes
  expect_false(any(vapply(pids, shmr:::process_alive, TRUE)))
})

test_that("shard defects: plain elements, every share reopened elsewhere, no reads after close", {
  x <- share(c(1.5, 2.5, 3.5))
  # shard's elements carry "shard_cow" and "shard_readonly" attributes.
  expect_identical(x[2], 2.5)
  expect_null(attributes(x[2:3]))
  # shard's share_open() + fetch() cannot read its atomic fast path.
  path <- shared_info(x)$path
  got <- in_other_process(function(path) fetch(share_open(path)), list(path = path))
  expect_identical(got, c(1.5, 2.5, 3.5))
  expect_error(share_open(file.path(tempdir(), basename(path))), "is not the file")
  expect_error(share_open(path, size = 1), "bytes, not 1")
  expect_error(share_open("/tmp/not_a_share"), "not the path of a shmr share")
  # shard's creator reads garbage after close().
  close(x)
  expect_error(sum(x), "closed")
  expect_error(x[1], "closed")
})

test_that("close() works on whatever share() handed back (shard: no method for a list)", {
  env <- new.env()
  env$a <- 1:10
  expect_false(close(share(env)))
  small <- share(list(a = 1:3), deep = TRUE, min_bytes = 1e6)
  expect_false(close(small))
  # An object a hook rewrote into one without large vectors.
  registerS3method("share_hook", "shrinks", function(x, ctx) {
    list(rewrite = function(obj) list(n = length(obj$big)))
  })
  rewritten <- share(structure(list(big = runif(1e5)), class = "shrinks"), deep = TRUE,
                     min_bytes = 1e4)
  expect_identical(rewritten, list(n = 100000L))
  expect_error(close(rewritten), NA)
  expect_error(close(rewritten), NA)
})

test_that("segment functions take shard's argument names; protect makes $readonly TRUE", {
  seg <- segment_create(64)
  on.exit(segment_close(x = seg), add = TRUE)
  expect_identical(segment_write(x = seg, data = as.raw(1:4), offset = 0), 4)
  expect_identical(segment_read(x = seg, offset = 0, size = 4), as.raw(1:4))
  expect_identical(segment_size(x = seg), 64)
  expect_false(segment_info(x = seg)$readonly)
  segment_protect(x = seg)
  expect_true(segment_info(seg)$readonly)
  expect_true(segment_info(seg)$protected)
  expect_error(segment_write(seg, as.raw(1)), "protected")
  other <- segment_open(path = segment_path(x = seg), backing = "mmap", readonly = TRUE)
  expect_true(segment_info(other)$readonly)
  expect_false(segment_info(other)$protected)
  expect_identical(segment_read(other, 0, 4), as.raw(1:4))
  segment_close(other, unlink = FALSE)
})

test_that("share(backing = 'mmap', name = <path>) puts the file where the path says", {
  p <- tempfile("shard_named_")
  x <- as.double(1:1000)
  s <- share(x, backing = "mmap", name = p)
  on.exit(close(s), add = TRUE)
  info <- shared_info(s)
  expect_identical(info$backing, "mmap")
  expect_identical(dirname(info$path), normalizePath(dirname(p)))
  expect_identical(info$name, paste0("shmr_", basename(p)))
  # The path reopens it, here and in another process.
  expect_identical(share_open(p), s)
  got <- in_other_process(function(p) sum(share_open(p)), list(p = p))
  expect_identical(got, sum(x))
  expect_identical(map_shared(basename(p)), s)
  expect_error(share(x, backing = "shm", name = p), "must be a name, not a path")
  again <- share(x, name = tempfile("shard_named_"), path = tempdir(), backing = "mmap")
  expect_identical(dirname(shared_info(again)$path), normalizePath(tempdir()))
  close(again)
  expect_error(share(x, name = file.path(tempdir(), "sub", "q"), path = "/", backing = "mmap"),
               "is a path in")
  expect_error(share(x, name = file.path(tempdir(), "no_such_dir", "q"), backing = "mmap"),
               "not an existing directory")
  # A path ending in "/" names no file: before, "<dir>/" put the file
  # beside <dir> (and "/tmp/" in the root directory).
  dir.create(inside <- tempfile("shard_dir_"))
  expect_error(share(x, name = paste0(inside, "/"), backing = "mmap"), "ends with '/'")
  expect_false(file.exists(file.path(dirname(inside), paste0("shmr_", basename(inside)))))
  # Only absolute paths: a relative one is a malformed name, never a file
  # placed relative to the working directory.
  expect_error(share(x, name = "sub/q", backing = "mmap"), "region name must be")
})

test_that("balanced mode records an error of a hook's rewrite and goes on; ctx is shard's", {
  seen <- NULL
  registerS3method("share_hook", "rewrite_fails", function(x, ctx) {
    seen <<- ctx
    list(rewrite = function(obj) stop("Rewrite failed!"), force_share_paths = paste0(ctx$path, "$v"))
  })
  obj <- structure(list(big = runif(1e5), v = 1:3), class = "rewrite_fails")
  s <- share(obj, deep = TRUE, min_bytes = 1e4, mode = "balanced")
  on.exit(close(s), add = TRUE)
  expect_identical(fetch(s), obj)
  expect_true(is_shared(s$big))
  expect_true(is_shared(s$v)) # forced through a "<root>" path
  skipped <- shared_info(s)$skipped
  expect_identical(skipped$path, "obj")
  expect_match(skipped$reason, "rewrite failed \\(Rewrite failed!\\)")
  expect_identical(seen$path, "<root>")
  expect_true(all(c("double", "integer", "logical", "raw", "complex") %in% seen$types))
  expect_identical(seen[c("mode", "min_bytes", "deep")], list(mode = "balanced", min_bytes = 1e4,
                                                             deep = TRUE))
  expect_error(share(obj, deep = TRUE, min_bytes = 1e4, mode = "strict"),
               "rewrite failed \\(Rewrite failed!\\) at obj")
})

test_that("a rewrite that nests its input without end is a clear error, not a stack overflow", {
  registerS3method("share_hook", "rewraps", function(x, ctx) {
    list(rewrite = function(y) structure(list(inner = y), class = "rewraps"))
  })
  obj <- structure(list(a = 1), class = "rewraps")
  for (mode in c("balanced", "strict")) {
    expect_error(share(obj, deep = TRUE, mode = mode),
                 "more than 100 share_hook\\(\\) rewrites one inside the other", info = mode)
  }
  # A rewrite that does end is walked as before, however deep the object.
  registerS3method("share_hook", "rewrites_once", function(x, ctx) {
    list(rewrite = function(y) unclass(y))
  })
  deep <- list(1)
  for (i in 1:150) deep <- list(deep)
  s <- share(structure(list(v = runif(1e5), deep = deep), class = "rewrites_once"), deep = TRUE)
  expect_identical(fetch(s), list(v = fetch(s$v), deep = deep))
  close(s)
})

test_that("methods of shard's hook generic, shard_share_hook(), steer deep sharing", {
  expect_identical(shard_share_hook(list(a = 1), list(path = "<root>")), list())
  assign("shard_share_hook.shard_style", function(x, ctx) list(skip_paths = paste0(ctx$path, "$cache")),
         envir = globalenv())
  on.exit(rm("shard_share_hook.shard_style", envir = globalenv()), add = TRUE)
  obj <- structure(list(data = runif(1e5), cache = runif(1e5)), class = "shard_style")
  s <- share(obj, deep = TRUE, min_bytes = 1e4)
  on.exit(close(s), add = TRUE)
  expect_true(is_shared(s$data))
  expect_false(is_shared(s$cache))
  expect_identical(shared_info(s)$skipped$path, "obj$cache")
})

test_that("shard's other functions that map onto shmr", {
  x <- share(as.double(1:1000))
  on.exit(close(x), add = TRUE)
  expect_true(is_shared_vector(x))
  expect_false(is_shared_vector(1:3))
  expect_false(is_shared_vector(share(list(a = 1:3))))
  expect_true(shared_advise(x, "sequential"))
  expect_true(shared_advise(x, "willneed"))
  expect_false(shared_advise(x, "dontneed")) # would drop this process's private pages
  expect_error(shared_advise(1:3), "not a shared object")
  # A deep share (is_shared() is TRUE for it) is advised region by region;
  # before, it was "not a shared object".
  d <- share(list(a = as.numeric(1:1000), b = list(c = as.numeric(1:2000))), deep = TRUE,
             min_bytes = 0)
  on.exit(close(d), add = TRUE)
  expect_true(is_shared(d))
  advised <- new.env()
  trace("advise_shared", where = asNamespace("shmr"), print = FALSE,
        tracer = bquote(assign("names", c(.(advised)$names, shared_name(x)), envir = .(advised))))
  on.exit(untrace("advise_shared", where = asNamespace("shmr")), add = TRUE)
  expect_true(shared_advise(d, "willneed"))
  expect_setequal(advised$names, shared_info(d)$regions)
  expect_true(all(c(shared_name(d$a), shared_name(d$b$c)) %in% advised$names))
  expect_false(shared_advise(d, "dontneed"))
  expect_error(shared_advise(list(a = 1), "willneed"), "not a shared object")
  # A path too long for R's file functions: said so, with the path cut
  # (R's own error quoted 1,000 characters of it).
  long <- file.path("/tmp", strrep("p", 5000))
  err <- tryCatch(share_open(long), error = conditionMessage)
  expect_match(err, "`path` is a path of 5005 bytes, longer than a path can be")
  expect_lt(nchar(err), 200)
  err <- tryCatch(share(1, backing = "mmap", name = long), error = conditionMessage)
  expect_match(err, "`name` is a path of 5005 bytes")
  expect_lt(nchar(err), 200)
  a <- as_shared(1:10 + 0L)
  expect_true(is_shared_vector(a))
  expect_identical(fetch(a), 1:10)
  expect_error(as_shared(list(1)), "atomic vector")
  # The share's name is as_shared()'s `path`: its errors name that.
  expect_error(as_shared(1, path = 1), "^`path` is 1, but a region name must be")
  expect_error(as_shared(1, path = "a b"), "^`path` is 'a b'")
  expect_identical(available_backings(), c("shm", "mmap"))
  seg <- segment_create(128)
  on.exit(segment_close(seg), add = TRUE)
  report <- segment_report()
  expect_identical(report$type, "segment")
  expect_true(segment_info(seg)$name %in% vapply(report$segments, `[[`, "", "name"))
  expect_gte(report$total_bytes, 128)
})

test_that("pool_dispatch() runs on one worker; pool_health_check() restarts a dead one", {
  skip_on_cran()
  skip_without_callr()
  p <- pool_create(2)
  on.exit(pool_stop(p), add = TRUE)
  expect_identical(pool_dispatch(1, quote(1 + 1), pool = p), 2)
  k <- 21
  expect_identical(pool_dispatch(2, quote(k * 2), pool = p), 42)
  # Variables found through enclosing environments are sent; base R's and
  # packages' the worker finds itself (before, both were "not found").
  expect_identical(pool_dispatch(1, quote(pi * 2), pool = p), pi * 2)
  outer_value <- 5
  f <- function() {
    inner <- 1
    pool_dispatch(2, quote(outer_value + inner + sqrt(4)), pool = p)
  }
  expect_identical(f(), 8)
  pid <- pool_dispatch(1, quote(Sys.getpid()), pool = p)
  expect_false(pid == Sys.getpid())
  expect_identical(pid, pool_status(p)$pid[1])
  tools::pskill(pid)
  shmr:::wait_for_exit(pid, 10)
  health <- pool_health_check(p)
  expect_identical(vapply(health$worker_actions, `[[`, "", "action"), c("restart", "none"))
  expect_identical(pool_status(p)$status, c("ok", "ok"))
  expect_false(pool_status(p)$pid[1] == pid)
  expect_error(pool_dispatch(3, quote(1), pool = p), "1 to 2")

  # A worker's error and a worker's exit are said as such; before, they
  # were parallel's "one node produced an error" and "error reading from
  # connection" in its unserialize(node$con) call.
  err <- tryCatch(pool_dispatch(1, quote(stop("inner")), pool = p), error = function(e) e)
  expect_identical(conditionMessage(err), "error on a worker while it evaluated `expr` (worker 1): inner")
  expect_null(conditionCall(err))
  err <- tryCatch(pool_dispatch(2, quote(quit(save = "no")), pool = p), error = function(e) e)
  expect_match(conditionMessage(err), "^a worker exited while it evaluated `expr` \\(worker 2\\)")
  expect_null(conditionCall(err))
  # The next dispatch to it runs on a new worker.
  expect_identical(pool_dispatch(2, quote(3 * 3), pool = p), 9)
})
