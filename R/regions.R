#' List this user's shared regions
#'
#' @param name `NULL` for every region, or the names of regions to describe
#'   (as given to `share(name = )` or returned by [shared_name()]); those
#'   are looked up one by one, without listing the directory, and a name
#'   with no region gives no row. So `nrow(shared_regions(name)) == 1` tells
#'   whether a region exists, and `$bytes` gives its size.
#' @return A data frame with one row per shmr region on this machine that
#'   belongs to the current user: `name`, `backing` (`"shm"` or `"mmap"`),
#'   `path` (the file holding the data), `bytes`, `creator_pid` (the process
#'   whose exit releases the region: its creator, or for a replica its
#'   keeper; as its own PID namespace numbers it), `creator_alive` (`NA`
#'   when this process cannot tell, as for a creator in another PID
#'   namespace out of sight), `persistent`, `writable`, `complete` (`FALSE`
#'   while a region is still being written), `created` (a `POSIXct`),
#'   `host` (this host's identity, see [remote]), `replica` (`TRUE` for a
#'   copy of a region of another host) and `origin` (for a replica, the
#'   host identity of its origin; `NA` otherwise).
#' @export
#' @examples
#' x <- share(1:10 + 0)
#' regions <- shared_regions()
#' regions[regions$name == shared_name(x), ]
#' shared_regions(shared_name(x))$bytes
#' nrow(shared_regions("no_such_region"))
shared_regions <- function(name = NULL) {
  r <- if (is.null(name)) {
    .Call(shmr_regions)
  } else {
    if (!is.character(name)) stop("`name` must be NULL or a character vector", call. = FALSE)
    .Call(shmr_regions_named, region_of_path(region_of_file_path(name)))
  }
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
#' A region normally disappears when its creator releases it or exits, also
#' when `SIGTERM`, `SIGHUP`, `SIGQUIT` or `SIGABRT` ends the creator (shmr removes its
#' regions first, unless another handler of that signal was installed or
#' the signal is ignored). A share that finds no room in shared memory
#' runs `prune_shared()` itself (at most once a second) before it gives up
#' or falls back to a file. A creator killed by `SIGKILL` (the kernel's
#' out-of-memory killer too) cannot clean up; `prune_shared()` removes the
#' regions (and half-written temporary files) whose creating process is
#' known to be gone: it no longer runs, or its process ID now belongs to a
#' process that started later. Regions of live processes are never touched,
#' nor are those of processes it cannot check: a creator in another PID
#' namespace (a container sharing `/dev/shm`) that this one does not see,
#' or any creator when no file descriptor is left to read `/proc` with.
#' From the machine's initial PID namespace, which sees every process, the
#' regions of dead processes of every container are removed. A replica (a
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
#' works for any region of this user, persistent or not. In the process
#' that sent the region to other hosts (see [remote]), it is then no longer
#' served, and pools release the copies of it, as after `close()`.
#'
#' @param name The region's name, as given to `share(name = )` or returned
#'   by [shared_name()]. The name of a part (`"shmr_...[2]"`, as
#'   [shared_name()] gives for an element of a shared list) removes the
#'   whole region that holds it.
#' @return `TRUE` when a region was removed, `FALSE` when there was none,
#'   invisibly. A file under the region's name that is not a shmr region
#'   (it does not start with shmr's magic bytes: another program's file)
#'   is left in place, with an error; a damaged region is removed.
#' @export
#' @examples
#' x <- share(1:10 + 0, name = "remove_shared_example", persist = TRUE)
#' remove_shared("remove_shared_example")
#' try(map_shared("remove_shared_example"))
remove_shared <- function(name) {
  if (!is.character(name) || length(name) != 1L || is.na(name)) {
    stop("`name` must be a single string", call. = FALSE)
  }
  region <- region_of_path(region_of_file_path(name))
  removed <- .Call(shmr_remove, region)
  # Served to other hosts, it is gone for them too, as after close(): their
  # copies would otherwise stay until their keepers exit.
  if (region %in% names(remote_state$exports)) remote_closed(region)
  invisible(removed)
}

# A path given to share(name = "/dir/data") stands for its region ("data")
# when that region is file-backed and its file is that path's
# ("/dir/shmr_data"); any other path stands for no region (""), so no path
# reaches a region in shared memory. Other names are kept.
region_of_file_path <- function(name) {
  paths <- !is.na(name) & startsWith(name, "/")
  for (i in which(paths)) {
    # Longer than any path: no file has it (and R's file functions would warn).
    if (is_too_long_for_a_path(name[i])) {
      name[i] <- ""
      next
    }
    region <- basename(name[i])
    found <- .Call(shmr_regions_named, region)
    file <- file.path(dirname(name[i]), if (startsWith(region, "shmr_")) region else paste0("shmr_", region))
    here <- length(found$path) == 1L && !identical(found$backing, "shm") &&
      identical(normalizePath(found$path, mustWork = FALSE), normalizePath(file, mustWork = FALSE))
    name[i] <- if (here) region else ""
  }
  name
}

# The region part of an object's name: "shmr_x[2]@names" -> "shmr_x".
region_of_path <- function(name) sub("\\[.*$|@.*$", "", name)
