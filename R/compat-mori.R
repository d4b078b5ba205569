#' Migrating from mori
#'
#' Code written for mori runs on shmr once `library(mori)` becomes
#' `library(shmr)` (and `mori::f` becomes `shmr::f`): shmr has mori's five
#' functions with mori's behaviour.
#'
#' * [share()] writes an object into shared memory and returns a version
#'   that reads it in place; sharing an object that is already shared (a
#'   shared object, a part of one, or the result of [map_shared()]) returns
#'   it unchanged, while its region's name still opens that region (after
#'   [prune_shared()] removed the region of a creator that died, `share()`
#'   writes a new one). Objects that are not data (functions, environments,
#'   language objects, `NULL`) come back unchanged, with no region. A
#'   compact sequence such as `1:1e9` is written straight into the region,
#'   never expanded in memory first; an object larger than the backing can
#'   hold (`share(1:1e15)`) is refused with an error naming its size before
#'   anything is allocated.
#' * [shared_name()] gives the name another process passes to
#'   [map_shared()], with a bracketed 1-based path for a part of a shared
#'   list (`"shmr_...[2,3]"`); `sub("\\[.*$", "", name)` is the region.
#'   `NULL` for an object that is not shared.
#' * [map_shared()] returns `NULL` for anything that is not the name of a
#'   shmr object: not a single string, `NA`, a malformed path, and a name
#'   without the `shmr_` prefix (such as `"junk"`) when no region of that
#'   name exists. A name with the prefix whose region is missing, or a path
#'   that leads nowhere, is an error. (A name without the prefix is a name
#'   given to `share(name = )`: `map_shared("my_data")` opens it when it
#'   exists.)
#' * [is_shared()] and [prune_shared()] (which returns the removed names,
#'   or `NULL`, invisibly) work as in mori.
#'
#' Lists: on R 4.3 and later a shared list, or a part of one, stays
#' `is_shared()` after a trip through `serialize()` and `unserialize()`
#' (into another process, say). On R 4.2 a shared list is an ordinary list
#' whose elements are shared: after such a round trip its elements are still
#' shared and read the same region, and `shared_name()` of each works, but
#' the list itself is a new ordinary list, so `is_shared()` and
#' `shared_name()` of the list are `FALSE` and `NULL` (mori's
#' `test-nested.R` checks the list itself).
#'
#' @section Differences from mori:
#' Implementation details, which mori's own tests check and shmr does
#' differently:
#' * Names start with `shmr_` (mori's with `/mori_`, with a hexadecimal
#'   part); a name may also carry an attribute, as in `"shmr_...@names"`,
#'   and [share()] can give a region a name of your choice (`name =
#'   "my_data"`). So mori's own names (`"/mori_0_fffffff"`) are `NULL` for
#'   shmr, not a missing region.
#' * The bytes of a region and of a serialized shared object are shmr's own
#'   (`inst/FORMAT.md`): a shared object serializes to about 150 bytes
#'   (mori's to about 30), and mori's corruption tests, which edit mori's
#'   layout, do not apply.
#' * mori's paths are limited to 64 levels (deeper parts have no name);
#'   shmr names parts at any depth.
#' * Error messages are worded differently ("no shared region named ...",
#'   "past the end of", "not a list" where mori says "not found", "out of
#'   bounds", "not a nested list").
#'
#' And in behaviour:
#' * A `/dev/shm` too small for the object is not a crash (mori fails with
#'   a bus error, in containers with a small `/dev/shm`): [share()] falls
#'   back to a file-backed mapping (`backing = "auto"`, the default) or,
#'   with `backing = "shm"`, stops with an error naming the size.
#' * [close()] releases an object at once (mori waits for garbage
#'   collection); later use of it is an error.
#' * For a copy that outlives the region (to `saveRDS()` it, for example),
#'   use [fetch()] (mori suggests `rlang::duplicate()`).
#' * On R 4.2, a shared list that went through `serialize()` is no longer
#'   `is_shared()` itself (its elements are); see Lists above.
#' * A pairlist comes back as a pairlist, identical to the original (mori
#'   turns a top-level pairlist into a list). A pairlist shared or mapped
#'   whole, and on R >= 4.3 one read from a shared list, has a
#'   `shared_name()` while it holds the elements it was decoded with and
#'   at least one of them is shared; on R 4.2 a pairlist inside a shared
#'   list has none (its elements do).
#' * A shared vector this process wrote to (`x[1] <- 99`) holds its own copy
#'   of the data: `shared_name(x)` is `NULL`, where mori keeps the name,
#'   under which another process would map the old values. `share(x)`
#'   shares the new ones.
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
#' is.null(map_shared("junk")) # no region "junk": not a shmr name
#' prune_shared()
NULL
