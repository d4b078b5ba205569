#' Migrating from mori
#'
#' Code written for mori runs on shmr once `library(mori)` becomes
#' `library(shmr)` (and `mori::f` becomes `shmr::f`): shmr has mori's five
#' functions with mori's behaviour.
#'
#' * [share()] writes an object into shared memory and returns a version
#'   that reads it in place; sharing an object that is already shared (a
#'   shared object, a part of one, or the result of [map_shared()]) returns
#'   it unchanged. Objects that are not data (functions, environments,
#'   language objects, `NULL`) come back unchanged, with no region.
#' * [shared_name()] gives the name another process passes to
#'   [map_shared()], with a bracketed 1-based path for a part of a shared
#'   list (`"shmr_...[2,3]"`); `sub("\\[.*$", "", name)` is the region.
#'   `NULL` for an object that is not shared.
#' * [map_shared()] returns `NULL` for a malformed name (not a single
#'   string, `NA`, a bad prefix or path) and an error for a well-formed
#'   name whose region is missing, or a path that leads nowhere.
#' * [is_shared()] and [prune_shared()] (which returns the removed names,
#'   or `NULL`, invisibly) work as in mori.
#'
#' @section Differences from mori:
#' * Names start with `shmr_` (mori's with `/mori_`); a name may also carry
#'   an attribute, as in `"shmr_...@names"`, and [share()] can give a region
#'   a name of your choice (`name = "my_data"`).
#' * A `/dev/shm` too small for the object is not a crash (mori fails with
#'   a bus error, in containers with a small `/dev/shm`): [share()] falls
#'   back to a file-backed mapping (`backing = "auto"`, the default) or,
#'   with `backing = "shm"`, stops with an error naming the size.
#' * [close()] releases an object at once (mori waits for garbage
#'   collection); later use of it is an error.
#' * For a copy that outlives the region (to `saveRDS()` it, for example),
#'   use [fetch()] (mori suggests `rlang::duplicate()`).
#' * A shared object serializes to about 150 bytes (mori's to about 30).
#'
#' @name compat-mori
#' @examples
#' x <- share(1:100)
#' sum(x)
#' nm <- shared_name(x)
#' identical(map_shared(nm), x)
#'
#' lst <- share(list(a = 1:3, b = letters))
#' shared_name(lst[[2]])
#' map_shared(shared_name(lst[[2]]))
#' is.null(map_shared("/mori_not_a_shmr_name"))
#' prune_shared()
NULL
