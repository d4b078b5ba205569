#' Migrating from bettermc
#'
#' Code that hands vectors between processes with bettermc's `copy2shm()`
#' and `allocate_from_shm()` runs on shmr once `library(bettermc)` becomes
#' `library(shmr)` (and `bettermc::f` becomes `shmr::f`).
#'
#' `copy2shm(x, name)` copies a logical, integer, double, complex or raw
#' vector, a factor, or an S3 object built on one of these (long vectors
#' included, every attribute kept) into a shared memory object called
#' `name`, which outlives the calling process: typically a forked or other
#' child copies its result and returns the small `shm_obj` to its parent.
#' `name` is a POSIX shared memory name: an optional leading `/` followed by
#' 1 to 100 letters, digits, `.`, `_` or `-`; the object is the shmr region
#' `shmr_<name>` (in `/dev/shm`, or the directory named by the environment
#' variable `SHMR_SHM_DIR`), also when `name` starts with `shmr_`: `"/a"`
#' and `"/shmr_a"` are two objects, the regions `shmr_a` and `shmr_shmr_a`.
#'
#' `allocate_from_shm(obj)` opens that object and removes its name at once,
#' so it can be allocated only once; a second call is an error naming
#' `shm_open`, as bettermc's. It checks the `shm_obj` against the object, as
#' bettermc does: a `type` that is not one of the five SEXP types is an
#' "unsupported SEXP type" error, a `size` other than the object's a "wrong
#' size" error, and a `type` or `length` other than the vector's an error
#' too (the name is removed all the same). The `attributes` of the
#' `shm_obj` are those the vector gets. With
#' `copy = TRUE` the vector is copied into ordinary memory and the shared
#' memory is freed. With `copy = FALSE` it is not copied: the vector reads
#' a private (copy-on-write) mapping of the object, so later writes stay in
#' the writing process (and its forked children), and the memory is freed
#' when the vector is garbage collected. Such a vector serializes by value,
#' like an ordinary one.
#'
#' @section Differences from bettermc:
#' * Every failure is an R error (bettermc returns some of them as a
#'   string), and a failed `copy2shm()` leaves nothing in `/dev/shm`: not for
#'   an unsupported type, nor a name that exists already, nor a full
#'   `/dev/shm`.
#' * With `overwrite = TRUE` an existing object of that name is removed and
#'   a new one created: processes that already opened the old one keep
#'   their data intact.
#' * Names may hold only letters, digits, `.`, `_` and `-` after the
#'   leading `/` (bettermc allows any character but `/`).
#' * Objects that were never allocated are not removed when their creator
#'   exits (as in bettermc); [remove_shared()] removes one by name.
#' * Only `copy2shm()` and `allocate_from_shm()` are provided. bettermc's
#'   other functions are outside shmr's purpose (sharing R objects) and are
#'   not provided: `mclapply()` (use [parallel::mclapply()], or
#'   [pool_lapply()], which returns large results through shared memory by
#'   itself); the semaphores `sem_open()`, `sem_post()`, `sem_wait()`,
#'   `sem_close()`, `sem_unlink()`, `semv_open()`, `semv_post()`,
#'   `semv_wait()` and `semv_unlink()`; the character vector tools
#'   `char_map()`, `map2char()`, `compress_chars()` and
#'   `uncompress_chars()` (shmr shares character vectors as they are); and
#'   `etry()` and `crash_dumps()` (error handling with dumps).
#' * Messages are worded as shmr's, naming the same failures (`shm_open`,
#'   "unsupported SEXP type", "wrong size").
#'
#' @param x A logical, integer, double, complex or raw vector, a factor, or
#'   an S3 object built on one of these.
#' @param name The shared memory object's name, such as `"/my_result"`.
#' @param overwrite Replace an existing object called `name` (`TRUE`), or
#'   fail (`FALSE`, the default).
#' @param copy The default for `allocate_from_shm()`'s `copy`.
#' @param obj An object returned by `copy2shm()`, usually in another process.
#' @return `copy2shm()`: an object of class `shm_obj`, a list with `name`
#'   (as given), `type` (the SEXP type of `x`, an integer), `length` (a
#'   double), `size` (of the shared memory object, in bytes, a double),
#'   `attributes` (those of `x`, as a pairlist) and `copy`.
#'   `allocate_from_shm()`: the vector, equal to `x`.
#' @name compat-bettermc
#' @examples
#' x <- factor(c("low", "high", "low"))
#' obj <- copy2shm(x, "/bettermc_example")
#' str(unclass(obj))
#' y <- allocate_from_shm(obj)
#' identical(x, y)
#' try(allocate_from_shm(obj)) # the name was removed by the first call
#'
#' # Zero-copy hand-off from a child process
#' \donttest{
#' if (requireNamespace("callr", quietly = TRUE)) {
#'   obj <- callr::r(function() shmr::copy2shm(rnorm(1e6), "/bettermc_child"))
#'   big <- allocate_from_shm(obj, copy = FALSE)
#'   length(big)
#' }
#' }
NULL

#' @rdname compat-bettermc
#' @export
copy2shm <- function(x, name, overwrite = FALSE, copy = TRUE) {
  region <- shm_obj_region(name, "copy2shm")
  check_flag(overwrite, "overwrite")
  check_flag(copy, "copy")
  if (!typeof(x) %in% names(sexp_types) || is.object(x) && !is.atomic(x)) {
    stop(sprintf(paste0("copy2shm(): unsupported SEXP type for 'x': it must be a logical, ",
                        "integer, double, complex or raw vector (or a factor or S3 object ",
                        "built on one), not %s"), describe_type(x)), call. = FALSE)
  }
  if (overwrite) {
    remove_shared(region)
  } else if (nrow(shared_regions(region)) > 0L) {
    stop(sprintf(paste0("copy2shm(): 'shm_open' failed for '%s': a shared memory object of ",
                        "that name exists already (overwrite = TRUE replaces it)"), name),
         call. = FALSE)
  }
  # A persistent region outlives this process until allocate_from_shm() (or
  # remove_shared()) removes it; closing this process's mapping leaves it.
  # A failure while writing removes what was written.
  # share_region(), not share(name = ): share() refuses names longer than 100
  # characters, and "shmr_" before a name of up to 100 is a valid region name
  # of up to 105. The region gets an S4 vector's S3 form, as from share().
  shared <- tryCatch(
    share_region(s4_vector_as_s3(x), "shm", TRUE, region, TRUE, ""),
    error = function(e) {
      stop(sprintf("copy2shm(): cannot create the shared memory object '%s' (%s)", name,
                   conditionMessage(e)), call. = FALSE)
    }
  )
  size <- shared_info(shared)$size
  close.default(shared)
  structure(list(
    name = name, type = sexp_types[[typeof(x)]], length = as.numeric(length(x)),
    size = size, attributes = as.pairlist(attributes(x)), copy = copy
  ), class = "shm_obj")
}

#' @rdname compat-bettermc
#' @export
allocate_from_shm <- function(obj, copy = obj$copy) {
  if (!inherits(obj, "shm_obj")) stop("`obj` must be an object returned by copy2shm()", call. = FALSE)
  # `copy` defaults to a field of `obj`: a hand-made shm_obj without it is
  # the user's mistake in `obj`, not in an argument they never gave.
  if (missing(copy) && !(is.logical(obj$copy) && length(obj$copy) == 1L && !is.na(obj$copy))) {
    stop("`obj` must be an object returned by copy2shm(): its `copy` is not TRUE or FALSE",
         call. = FALSE)
  }
  check_flag(copy, "copy")
  region <- shm_obj_region(obj$name, "allocate_from_shm")
  # A prefixed name: a missing region is an error, not NULL.
  x <- tryCatch(map_shared(region), error = function(e) {
    stop(sprintf(paste0("allocate_from_shm(): 'shm_open' failed for '%s': no such shared ",
                        "memory object (it was allocated already, removed, or never created)"),
                 obj$name), call. = FALSE)
  })
  # One allocation per object: the name goes as soon as it is open, also
  # when the shm_obj turns out not to match it.
  remove_shared(region)
  detach_shared(x)
  matched <- FALSE
  on.exit(if (!matched) unmap_shared(x), add = TRUE)
  check_shm_obj(obj, x)
  if (!identical(as.pairlist(attributes(x)), as.pairlist(obj$attributes))) {
    tryCatch(attributes(x) <- as.list(obj$attributes), error = function(e) {
      stop(sprintf("allocate_from_shm(): the attributes of `obj` do not fit '%s': %s", obj$name,
                   conditionMessage(e)), call. = FALSE)
    })
  }
  matched <- TRUE
  if (copy) {
    y <- fetch(x)
    unmap_shared(x)
    return(y)
  }
  x
}

sexp_types <- c(logical = 10L, integer = 13L, double = 14L, complex = 15L, raw = 24L)

# The shmr region name for a bettermc name ("/name" or "name"): always
# prefixed, so that "/shmr_a" and "/a", two POSIX objects in bettermc, are two
# regions here (shmr's functions take "shmr_a" for the region of "a").
shm_obj_region <- function(name, caller) {
  if (!is.character(name) || length(name) != 1L || is.na(name) ||
      !is_region_name_text(sub("^/", "", name)) || sub("^/", "", name) %in% c(".", "..")) {
    stop(sprintf(paste0("%s(): 'shm_open' cannot use %s: a shared memory name must be '/' ",
                        "followed by 1 to 100 letters, digits, '.', '_' or '-', other than '.' and '..'"),
                 caller, if (is.character(name) && length(name) == 1L) sprintf("'%s'", shorten(name))
                 else "that name"), call. = FALSE)
  }
  paste0("shmr_", sub("^/", "", name))
}

shm_obj_type <- function(type) {
  if (!is.numeric(type) || length(type) != 1L || is.na(type) || !type %in% sexp_types) {
    stop(sprintf(paste0("allocate_from_shm(): unsupported SEXP type %s in the shm_obj ",
                        "(10 logical, 13 integer, 14 double, 15 complex or 24 raw)"),
                 if (is.numeric(type) && length(type) == 1L) format(type) else "(not a number)"),
         call. = FALSE)
  }
  names(sexp_types)[match(type, sexp_types)]
}

# What the shm_obj says against what its shared memory object holds.
check_shm_obj <- function(obj, x) {
  type <- shm_obj_type(obj$type)
  if (!identical(typeof(x), type)) {
    stop(sprintf(paste0("allocate_from_shm(): the shm_obj says type %s, but '%s' holds a ",
                        "vector of type %s"), type, obj$name, typeof(x)), call. = FALSE)
  }
  size <- shared_info(x)$size
  if (!is.numeric(obj$size) || length(obj$size) != 1L || !isTRUE(obj$size == size)) {
    stop(sprintf(paste0("allocate_from_shm(): the shared memory object '%s' is of wrong size: ",
                        "the shm_obj says %s bytes, it has %s"), obj$name,
                 format(obj$size, scientific = FALSE), format(size, scientific = FALSE)),
         call. = FALSE)
  }
  if (!is.numeric(obj$length) || length(obj$length) != 1L || !isTRUE(obj$length == length(x))) {
    stop(sprintf(paste0("allocate_from_shm(): 'alloc_from_shm' refuses the shm_obj: it says %s ",
                        "elements, but '%s' holds %s"), format(obj$length, scientific = FALSE),
                 obj$name, format(length(x), scientific = FALSE)), call. = FALSE)
  }
}
