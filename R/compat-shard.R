#' Migrating from shard
#'
#' Code written for shard's shared inputs, segments and worker pools runs on
#' shmr once `library(shard)` becomes `library(shmr)` (and `shard::f`
#' becomes `shmr::f`). shmr has shard's [share()] (with `backing`,
#' `readonly`, `name`, `deep`, `min_bytes`, `cycle` and `mode`), [fetch()]
#' and its alias `materialize()`, [close()], [is_shared()], [shared_info()],
#' `share_open()`, the segment functions ([segment_create()],
#' [segment_open()], [segment_read()], [segment_write()],
#' [segment_protect()], [segment_info()], [segment_path()],
#' [segment_size()], [segment_advise()], [segment_close()]) and the pool
#' functions ([pool_create()], [pool_get()], [pool_lapply()],
#' [pool_sapply()], [pool_status()], [pool_stop()]).
#'
#' `share_open(path)` opens a share from the path of its file (as given by
#' `shared_info(x)$path`) or its name; `materialize()` is [fetch()].
#'
#' @section Differences from shard:
#' * `share(x)` returns the shared object itself, not a handle: it behaves
#'   like `x` and reads shared memory in place, in the creating process and
#'   in every worker it is sent to (as a name). `fetch()` still returns an
#'   ordinary copy, as in shard, so existing code works; dropping the
#'   `fetch()` calls in workers avoids that copy. The fields of shard's
#'   handle (`x$path`, `x$size`, ...) are those of `shared_info(x)`.
#' * Every share can be opened elsewhere: `share_open()` followed by
#'   `fetch()` works for atomic vectors too, and elements read from a shared
#'   vector are plain values (`x[5]` is `identical()` to the original's).
#' * Writing to a read-only share (`x[1] <- 0`) is not an error: it changes
#'   only the writing process's copy of the touched memory page. Use
#'   `readonly = FALSE` (or [shared_buffer()]) for writes that every process
#'   sees.
#' * Using a share or a segment after [close()] is an R error, never a read
#'   of stale memory.
#' * `share(x, deep = TRUE)` shares every vector of at least `min_bytes` =
#'   1 MiB by default, where shard's default is 64 MiB. The vectors of a
#'   typical model (residuals, fitted values, the QR decomposition, the
#'   model frame's columns) are each smaller than 64 MiB up to 8 million
#'   rows, so shard's default would send such a model whole to every
#'   worker, where shmr's sends region names and the model's small parts.
#'   Pass `min_bytes = 64 * 1024^2` for shard's behaviour.
#' * [segment_create()]'s `path` is the directory of the segment's file
#'   (shard takes the file itself), and a segment is made read-only with
#'   [segment_protect()] rather than `readonly = TRUE`. [segment_open()]
#'   finds the backing by itself.
#' * [pool_create()] replaces workers that die and, with `rss_limit`,
#'   recycles PSOCK workers whose resident memory exceeds it after a chunk;
#'   shard's `rss_drift_threshold`, `heartbeat_interval` and
#'   `min_recycle_interval` are not provided, and its `init_expr` is
#'   `init`. [pool_lapply()] returns an unnamed list like [lapply()]; the
#'   columns of [pool_status()] are shmr's.
#' * shard's `shard_map()`, buffers, arenas, views, tables and streams are
#'   not provided: [pool_lapply()], [pool_apply()] and [shared_buffer()]
#'   cover the same ground.
#'
#' @param path The path of a share's file (`shared_info(x)$path`), or its
#'   name.
#' @param backing Accepted for code written for shard; shmr finds the
#'   backing by itself.
#' @param size `NULL`, or the share's size in bytes, which is then checked.
#' @param x A shared object.
#' @return `share_open()`: the shared object. `materialize()`: an ordinary
#'   copy of `x` (see [fetch()]).
#' @name compat-shard
#' @examples
#' mat <- matrix(rnorm(1e4), nrow = 100)
#' shared_mat <- share(mat)
#' identical(mat, fetch(shared_mat))
#' info <- shared_info(shared_mat)
#' info$class_info
#' reopened <- share_open(info$path)
#' identical(materialize(reopened), mat)
#' close(shared_mat)
NULL

#' @rdname compat-shard
#' @export
share_open <- function(path, backing = c("mmap", "shm"), size = NULL) {
  match.arg(backing)
  if (!is.character(path) || length(path) != 1L || is.na(path)) {
    stop("`path` must be a single string", call. = FALSE)
  }
  name <- basename(path)
  x <- if (!grepl("/", path) || startsWith(name, "shmr_")) map_shared(name)
  if (is.null(x)) stop(sprintf("'%s' is not the path of a shmr share", path), call. = FALSE)
  info <- shared_info(x)
  if (grepl("/", path) && !identical(normalizePath(path, mustWork = FALSE), info$path)) {
    stop(sprintf("'%s' is not the file of share '%s' (%s)", path, info$name, info$path),
         call. = FALSE)
  }
  if (!is.null(size) && !isTRUE(all.equal(as.numeric(size), info$size))) {
    stop(sprintf("share '%s' has %s bytes, not %s", info$name, format(info$size), format(size)),
         call. = FALSE)
  }
  x
}

#' @rdname compat-shard
#' @export
materialize <- function(x) fetch(x)
