#' Shared memory segments: raw bytes
#'
#' A segment is a named block of shared bytes with no R object structure:
#' the low-level layer under [share()], for code that manages its own
#' layout. Segments are always writable by their creator; any process of the
#' same user can open one by name. Reads and writes copy between R vectors
#' and the segment, checking every offset; they never hand R a pointer into
#' it, so closing a segment can never leave R reading freed memory.
#'
#' * `segment_create()` makes a new zero-filled segment of `size` bytes.
#' * `segment_open()` opens an existing one by the path of its file
#'   ([segment_path()]) or by its name, read-only unless `readonly = FALSE`.
#' * `segment_write()` copies a raw, logical, integer or double vector into
#'   the segment at byte `offset` (4 bytes per logical or integer, 8 per
#'   double, in this machine's byte order).
#' * `segment_read()` returns `size` bytes from `offset` as a raw vector (by
#'   default everything from `offset` to the end).
#' * `segment_protect()` makes the segment read-only in this process; later
#'   writes through this handle are errors.
#' * `segment_info()` describes it; `segment_path()` and `segment_size()`
#'   give its file and its size in bytes.
#' * `segment_advise()` tells the kernel how the segment will be read
#'   (`madvise()`): `"sequential"` reads ahead, `"random"` does not,
#'   `"willneed"` starts reading it in, `"dontneed"` lets its pages go (the
#'   data stays in the segment).
#' * `segment_close()` releases this process's mapping; with `unlink = TRUE`
#'   it also removes the segment for everyone. By default it removes it only
#'   when this handle created it.
#'
#' A segment is also a shmr region: it appears in [shared_regions()], and
#' [map_shared()] returns its bytes as a raw vector that reads the segment in
#' place (writes to that vector reach the segment).
#'
#' @param size Number of bytes (`segment_create()`), or of bytes to read: a
#'   whole number.
#' @param backing,name As for [share()]. `segment_open()` finds the backing
#'   of the segment itself: its `backing` is accepted for code written for
#'   shard and otherwise ignored.
#' @param path `segment_create()`: as for [share()], the directory of a
#'   file-backed segment. `segment_open()`: the path of the segment's file
#'   ([segment_path()]) or the segment's name. As for [share_open()], a
#'   path in another directory than the segment's file is an error.
#' @param x,seg A segment (the argument names are shard's).
#' @param readonly Open for reading only (`TRUE`, the default) or also for
#'   writing.
#' @param data A raw, logical, integer or double vector.
#' @param offset Byte offset into the segment, from 0: a whole number.
#' @param advice `"normal"`, `"sequential"`, `"random"`, `"willneed"` or
#'   `"dontneed"`.
#' @param unlink Remove the segment for every process (`TRUE`), keep it
#'   (`FALSE`), or `NULL`: remove it when this handle created it.
#' @return `segment_create()` and `segment_open()`: a segment (class
#'   `shmr_segment`). `segment_write()`: the number of bytes written,
#'   invisibly. `segment_read()`: a raw vector. `segment_info()`: a list with
#'   `name`, `size`, `backing`, `path`, `readonly` (writes through this
#'   handle are refused: it was opened read-only or protected),
#'   `protected`, `owner` and `closed` (and `owns`, the same as `owner`). `segment_path()`: the
#'   segment's file. `segment_size()`: its size in bytes. `segment_advise()`:
#'   `TRUE` when the kernel accepted the advice. `segment_protect()` and
#'   `segment_close()`: `seg`, invisibly.
#' @name segments
#' @examples
#' seg <- segment_create(64)
#' segment_write(seg, as.raw(1:4), offset = 8)
#' segment_write(seg, c(1.5, 2.5), offset = 16)
#' segment_read(seg, offset = 8, size = 4)
#' readBin(segment_read(seg, 16, 16), "double", n = 2)
#'
#' segment_size(seg)
#' segment_advise(seg, "sequential")
#' other <- segment_open(segment_path(seg))
#' segment_read(other, 8, 4)
#' try(segment_write(other, as.raw(0))) # opened read-only
#' segment_close(other)
#'
#' segment_protect(seg)
#' try(segment_write(seg, as.raw(0)))
#' segment_close(seg)
NULL

#' @rdname segments
#' @export
segment_create <- function(size, backing = c("auto", "shm", "mmap"), name = NULL, path = NULL) {
  backing <- choose_arg(backing, c("auto", "shm", "mmap"), "backing")
  bytes_argument(size, "size", minimum = 1)
  if (!is.null(name)) check_region_name(name)
  options <- list(
    backing = backing, name = name,
    data_directory = if (backing == "shm") "" else data_directory(path, FALSE),
    shm_capacity = shm_capacity()
  )
  .Call(shmr_segment_create, size, options)
}

#' @rdname segments
#' @export
segment_open <- function(path, backing = c("auto", "shm", "mmap"), readonly = TRUE) {
  choose_arg(backing, c("auto", "shm", "mmap"), "backing")
  name <- path
  # A path (segment_path(), shared_info()$path) names the region by its file.
  is_path <- is.character(name) && length(name) == 1L && !is.na(name) && grepl("/", name)
  if (is_path) {
    check_path_length(path, "`path`")
    # basename() drops a trailing "/": "<dir>/" would name the region <dir>.
    if (endsWith(path, "/")) {
      stop(sprintf("`path` ends with '/' ('%s'): give the segment's file (segment_path()) or its name",
                   shorten(path)), call. = FALSE)
    }
    name <- basename(name)
  }
  check_region_name(name, "path")
  check_flag(readonly, "readonly")
  seg <- .Call(shmr_segment_open, name, readonly)
  # A region is found by its name wherever its file is: a path in another
  # directory names some other file, and opening this one instead would
  # read the wrong data.
  if (is_path) {
    file <- segment_path(seg)
    if (!is_region_file(path, file)) {
      segment_close(seg, unlink = FALSE)
      stop(sprintf("'%s' is not the file of segment '%s' (%s)", shorten(path), name, file),
           call. = FALSE)
    }
  }
  seg
}

#' @rdname segments
#' @export
segment_write <- function(x, data, offset = 0) {
  invisible(.Call(shmr_segment_write, x, data, bytes_argument(offset, "offset")))
}

#' @rdname segments
#' @export
segment_read <- function(x, offset = 0, size = NULL) {
  if (!is.null(size)) size <- bytes_argument(size, "size")
  .Call(shmr_segment_read, x, bytes_argument(offset, "offset"), size)
}

# The argument `arg` as one whole number of bytes (the engine checks that it
# fits the segment): the engine would take the first element of whatever it
# is given, and truncate a fraction.
bytes_argument <- function(value, arg, minimum = 0) {
  if (!is.numeric(value) || length(value) != 1L) {
    stop(sprintf("`%s` must be a single number of bytes", arg), call. = FALSE)
  }
  value <- as.numeric(value)
  if (is.na(value) || value < minimum || value != floor(value)) {
    stop(sprintf("%s must be a whole number of bytes >= %d", arg, minimum), call. = FALSE)
  }
  value
}

#' @rdname segments
#' @export
segment_protect <- function(x) {
  .Call(shmr_segment_protect, x)
  invisible(x)
}

#' @rdname segments
#' @export
segment_info <- function(x) {
  info <- .Call(shmr_segment_info, x)
  # shard's names: `owns`, and `readonly` for "writes are refused".
  info$owns <- info$owner
  info$readonly <- info$readonly || info$protected
  info
}

#' @rdname segments
#' @export
segment_path <- function(x) segment_info(x)$path

#' @rdname segments
#' @export
segment_size <- function(x) segment_info(x)$size

#' @rdname segments
#' @export
segment_advise <- function(seg, advice = c("normal", "sequential", "random", "willneed",
                                           "dontneed")) {
  advice <- choose_arg(advice, c("normal", "sequential", "random", "willneed", "dontneed"),
                       "advice")
  .Call(shmr_segment_advise, seg, advice)
}

#' @rdname segments
#' @export
segment_close <- function(x, unlink = NULL) {
  if (!is.null(unlink)) check_flag(unlink, "unlink")
  .Call(shmr_segment_close, x, if (is.null(unlink)) NA else unlink)
  invisible(x)
}

#' @export
print.shmr_segment <- function(x, ...) {
  info <- tryCatch(segment_info(x), error = function(e) NULL)
  if (is.null(info)) {
    cat("<shmr segment from another process: not open here>\n")
  } else {
    state <- c(if (info$closed) "closed", if (info$readonly) "read-only",
               if (info$protected) "protected")
    cat(sprintf("<shmr segment %s: %s bytes, %s%s>\n", info$name,
                format_count(info$size), info$backing,
                if (length(state)) paste0(", ", paste(state, collapse = ", ")) else ""))
  }
  invisible(x)
}
