#' List this user's shared regions
#'
#' @return A data frame with one row per shmr region on this machine that
#'   belongs to the current user: `name`, `bytes`, `creator_pid`,
#'   `creator_alive`, `persistent`, `complete` (`FALSE` while a region is
#'   still being written), and `created` (a `POSIXct`).
#' @export
#' @examples
#' x <- share(1:10 + 0)
#' regions <- shared_regions()
#' regions[regions$name == shared_name(x), ]
shared_regions <- function() {
  r <- .Call(shmr_regions)
  out <- data.frame(
    name = r$name, bytes = r$bytes, creator_pid = as.integer(r$creator_pid),
    creator_alive = r$creator_alive, persistent = r$persistent,
    complete = r$complete, stringsAsFactors = FALSE
  )
  out$created <- as.POSIXct(r$created, origin = "1970-01-01")
  out[order(out$name), , drop = FALSE]
}

#' Remove regions left behind by processes that died
#'
#' A region normally disappears when its creator releases it or exits. A
#' creator killed by a signal cannot clean up; `prune_shared()` removes the
#' regions (and half-written temporary files) whose creating process is no
#' longer running. Regions of live processes are never touched.
#'
#' @return The names of the removed regions, invisibly.
#' @export
#' @examples
#' prune_shared()
prune_shared <- function() {
  invisible(.Call(shmr_prune))
}
