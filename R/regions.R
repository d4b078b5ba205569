#' List this user's shared regions
#'
#' @return A data frame with one row per shmr region on this machine that
#'   belongs to the current user: `name`, `backing` (`"shm"` or `"mmap"`),
#'   `path` (the file holding the data), `bytes`, `creator_pid` (the process
#'   whose exit releases the region: its creator, or for a replica its
#'   keeper), `creator_alive`, `persistent`, `writable`, `complete` (`FALSE`
#'   while a region is still being written), `created` (a `POSIXct`),
#'   `host` (this host's identity, see [remote]), `replica` (`TRUE` for a
#'   copy of a region of another host) and `origin` (for a replica, the
#'   host identity of its origin; `NA` otherwise).
#' @export
#' @examples
#' x <- share(1:10 + 0)
#' regions <- shared_regions()
#' regions[regions$name == shared_name(x), ]
shared_regions <- function() {
  r <- .Call(shmr_regions)
  out <- data.frame(
    name = r$name, backing = r$backing, path = r$path, bytes = r$bytes,
    creator_pid = as.integer(r$creator_pid), creator_alive = r$creator_alive,
    persistent = r$persistent, writable = r$writable, complete = r$complete,
    stringsAsFactors = FALSE
  )
  out$created <- as.POSIXct(r$created, origin = "1970-01-01")
  out$host <- rep(host_identity(), nrow(out))
  out$replica <- r$replica
  out$origin <- r$origin_host
  out[order(out$name), , drop = FALSE]
}

#' Remove regions left behind by processes that died
#'
#' A region normally disappears when its creator releases it or exits. A
#' creator killed by a signal cannot clean up; `prune_shared()` removes the
#' regions (and half-written temporary files) whose creating process is no
#' longer running. Regions of live processes are never touched. A replica (a
#' copy of a region of another host, see [remote]) is removed only when its
#' keeper, the local process that fetched it, is dead; so are copies a
#' killed fetcher left half-written, and fetch locks nobody holds.
#'
#' @return The names of the removed regions, or `NULL` when none was
#'   removed, invisibly.
#' @export
#' @examples
#' prune_shared()
prune_shared <- function() {
  removed <- .Call(shmr_prune)
  invisible(if (length(removed)) removed)
}

#' Remove a shared region by name
#'
#' Removes the region (and, for a file-backed region, its file) so no
#' process can map it any more; processes that mapped it keep their data.
#' This is how a persistent region (`share(persist = TRUE)`) is removed. It
#' works for any region of this user, persistent or not.
#'
#' @param name The region's name, as given to `share(name = )` or returned
#'   by [shared_name()].
#' @return `TRUE` when a region was removed, `FALSE` when there was none,
#'   invisibly.
#' @export
#' @examples
#' x <- share(1:10 + 0, name = "remove_shared_example", persist = TRUE)
#' remove_shared("remove_shared_example")
#' try(map_shared("remove_shared_example"))
remove_shared <- function(name) {
  if (!is.character(name) || length(name) != 1L || is.na(name)) {
    stop("`name` must be a single string", call. = FALSE)
  }
  invisible(.Call(shmr_remove, region_of_path(name)))
}

# The region part of an object's name: "shmr_x[2]@names" -> "shmr_x".
region_of_path <- function(name) sub("\\[.*$|@.*$", "", name)
