#' Shared output buffers
#'
#' `shared_buffer()` makes a writable shared vector, matrix or array for
#' results that workers fill in: each worker writes its own disjoint part
#' (`buf[, j] <- v`), the writes land in shared memory, and the caller reads
#' the result without a copy. Writes go straight to shared memory even
#' inside a function (where R would otherwise modify a private copy), so a
#' worker's `FUN` can simply assign into the buffer it receives.
#'
#' Indexing follows R's rules for `[<-` with positive, negative, logical or
#' character (dimnames) indices and numeric or character (dimnames)
#' matrices of subscripts, NA and zero positions included (`drop`, which
#' `[<-` does not take, is an error); the value is
#' recycled (with R's warning when its length does not divide the selection's
#' along the whole vector, and R's error with a subscript per dimension) and
#' converted to the buffer's type; a value the type cannot hold (1.5 for an
#' integer or raw buffer, 300 for a raw one, 2 for a logical one, `"a"` for
#' a number) is an error, as it is for `init`. A write builds no vector of
#' positions: `buf[, j] <- v` costs no memory beyond `v`. Only `[<-` and
#' `[[<-` change a buffer: copies R makes for its own purposes (`unclass()`,
#' arithmetic) are private, and the results of arithmetic, comparisons,
#' Math and Complex functions, [t()] and [diff()] are ordinary vectors
#' without the class `shmr_buffer`. A buffer changed inside a function and returned
#' is the same buffer, and so is a buffer given names, `dim`, `dimnames` or
#' other attributes (wherever it is kept: a variable, a list, an environment). Writes from
#' several processes to the same elements
#' race: give each worker its own part.
#'
#' @param type `"double"`, `"integer"`, `"logical"`, `"raw"` or `"complex"`.
#' @param dim A length (a vector, up to 2^52 elements), or the dimensions of
#'   a matrix or array (each at most 2^31 - 1, as R allows).
#' @param init The initial value of every element (`NA`; for raw, `00`). A
#'   value the type cannot hold (`"abc"`, `3e9` or `1.5` for an integer buffer) is
#'   an error.
#' @return A shared buffer: a writable shared vector (class `shmr_buffer`)
#'   with `dim` set when `dim` has more than one element.
#' @export
#' @examples
#' buf <- shared_buffer("double", c(3, 2), init = 0)
#' buf[, 2] <- c(1, 2, 3)
#' buf[]
#' \donttest{
#' pool <- pool_create(2)
#' out <- shared_buffer("integer", c(2, 4))
#' invisible(pool_lapply(1:4, function(j, out) {
#'   out[, j] <- c(j, j * 10L)
#'   NULL
#' }, out = out))
#' out[]
#' pool_stop(pool)
#' }
shared_buffer <- function(type = c("double", "integer", "logical", "raw", "complex"), dim,
                          init = NA) {
  type <- choose_arg(type, c("double", "integer", "logical", "raw", "complex"), "type")
  if (!is.numeric(dim) || !length(dim) || anyNA(dim) || any(!is.finite(dim)) || any(dim < 0) ||
      any(dim != round(dim))) {
    stop("`dim` must be non-negative whole numbers", call. = FALSE)
  }
  if (length(dim) > 1L && any(dim > .Machine$integer.max)) {
    stop(sprintf("each dimension of a matrix or array can be at most %d (R's limit); a vector ",
                 .Machine$integer.max), "(a single `dim`) can be longer", call. = FALSE)
  }
  if (prod(dim) > 2^52) stop("a buffer can hold at most 2^52 elements", call. = FALSE)
  if (length(init) != 1L) stop("`init` must be a single value", call. = FALSE)
  init <- if (type == "raw" && is.na(init)) {
    as.raw(0)
  } else {
    stored_values(init, type, sprintf("`init` (%s)", shorten(paste(format(init), collapse = ""))))
  }
  options <- list(backing = "auto", readonly = FALSE, data_directory = data_directory(NULL, FALSE),
                  shm_capacity = shm_capacity())
  .Call(shmr_buffer_create, type, as.numeric(dim), init, options)
}

#' @export
`[<-.shmr_buffer` <- function(x, ..., value) without_call({
  subscripts <- buffer_subscripts(x, substitute(list(...)), ...)
  # As in R, NA subscripts select nothing when one value is given, and are
  # an error otherwise (which element would get which value is unclear).
  has_na <- any(vapply(subscripts, anyNA, TRUE))
  if (has_na && length(value) > 1L) {
    stop("NAs are not allowed in subscripted assignments", call. = FALSE)
  }
  value <- stored_values(value, typeof(x), "a value assigned")
  d <- dim(x) %||% length(x)
  if (length(subscripts) == 1L) d <- prod(d)
  # NA positions count, as R counts them: b[NA] <- numeric(0) is an error
  # although no element would be written.
  selected <- prod(vapply(seq_along(subscripts), function(k) {
    if (is.null(subscripts[[k]])) as.numeric(d[k]) else as.numeric(length(subscripts[[k]]))
  }, 0))
  if (selected > 0 && !length(value)) stop("replacement has length zero", call. = FALSE)
  # As R does: along the whole vector a warning (the values recycle), with a
  # subscript per dimension an error.
  if (selected > 0 && length(value) > 0 && selected %% length(value) != 0) {
    message <- "number of items to replace is not a multiple of replacement length"
    if (length(subscripts) > 1L) stop(message, call. = FALSE)
    warning(message, call. = FALSE)
  }
  if (has_na) subscripts <- lapply(subscripts, function(s) if (is.null(s)) s else s[!is.na(s)])
  .Call(shmr_buffer_write, x, subscripts, value)
})

# R copies a buffer to change its names, dim or dimnames (a buffer references
# itself, so R takes it as held elsewhere), or wraps it when it is long.
# That copy, kept in a list or an environment, became a private vector at
# its first read that asked R for a writable pointer (c(), format()), and
# stopped being the buffer. The result is made a view of the buffer again,
# with its new attributes, by a write of nothing.
as_buffer_again <- function(x) {
  .Call(shmr_buffer_write, x, list(integer()), vector(typeof(x), 0L))
}

#' @export
`names<-.shmr_buffer` <- function(x, value) as_buffer_again(NextMethod())

#' @export
`dim<-.shmr_buffer` <- function(x, value) as_buffer_again(NextMethod())

#' @export
`dimnames<-.shmr_buffer` <- function(x, value) as_buffer_again(NextMethod())

# R puts the assigned value itself into a replacement method's call, and
# reports an error with its call: a value that cannot be read (a closed
# shared object) would raise again while the error is printed, past try().
without_call <- function(expr) {
  tryCatch(expr, error = function(e) {
    e$call <- NULL
    stop(e)
  })
}

#' @export
`[[<-.shmr_buffer` <- function(x, ..., value) without_call({
  if (length(value) != 1L) stop("more elements supplied than there are to replace", call. = FALSE)
  # As for any vector, `[[<-` selects one element: b[[c(1, 2)]] is an error.
  if (...length() == 0L || any(lengths(list(...)) != 1L)) {
    stop("attempt to select more than one element: `[[<-` takes one subscript of length 1 ",
         "per dimension", call. = FALSE)
  }
  indices <- lapply(list(...), function(index) {
    if (is.na(index)) stop("`[[<-` takes a subscript that is not NA", call. = FALSE)
    # As R does, TRUE is position 1 and FALSE position 0 (to `[<-`, TRUE
    # would be every element).
    if (is.logical(index)) index <- as.integer(index)
    if (is.numeric(index) && index < 1) {
      stop("attempt to select less than one element: `[[<-` takes a position >= 1", call. = FALSE)
    }
    index
  })
  do.call(`[<-.shmr_buffer`, c(list(x), indices, list(value = value)))
})

# R's arithmetic, Math functions, t() and diff() keep the class of their
# argument on the new vector they return; that vector is private, and as a
# "shmr_buffer" it would refuse assignments ("not a shared buffer"). The
# rare result that is the buffer itself (`+b`) keeps its class.
private_result <- function(value) {
  if (inherits(value, "shmr_buffer") && !is_view(value)) oldClass(value) <- NULL
  value
}

#' @export
Ops.shmr_buffer <- function(e1, e2) private_result(NextMethod())

#' @export
Math.shmr_buffer <- function(x, ...) private_result(NextMethod())

#' @export
Complex.shmr_buffer <- function(z) private_result(NextMethod())

#' @export
t.shmr_buffer <- function(x) private_result(NextMethod())

#' @export
diff.shmr_buffer <- function(x, ...) private_result(NextMethod())

#' @export
print.shmr_buffer <- function(x, ...) {
  cat(sprintf("<shmr buffer %s: %s>\n", shared_name(x) %||% "(released)",
              paste(dim(x) %||% length(x), collapse = " x ")))
  print(fetch(x), ...)
  invisible(x)
}

# What x[...] <- value selects, as the engine takes it: one subscript (along
# the whole vector) or one per dimension, each NULL (everything) or 1-based
# positions. Positions are built only where R's rules need them (negative,
# logical, character or matrix subscripts); a missing subscript selects
# everything without a vector of positions, so b[, j] <- v costs nothing
# beyond the write.
buffer_subscripts <- function(x, given, ...) {
  given <- as.list(given)[-1L]
  # R's `[<-` has no `drop` (it would count as one more subscript, "incorrect
  # number of subscripts"): an assignment never drops dimensions.
  if ("drop" %in% names(given)) {
    stop("`drop` is not an argument of `[<-`: an assignment keeps the buffer's dimensions, ",
         "so leave `drop` out", call. = FALSE)
  }
  d <- dim(x) %||% length(x)
  is_empty <- vapply(given, function(a) identical(a, quote(expr = )), TRUE)
  if (length(given) == 0L) return(list(NULL))
  if (length(given) == 1L) {
    if (is_empty[1L]) return(list(NULL))
    index <- ..1
    if (is.matrix(index) && length(d) > 1L && ncol(index) == length(d)) {
      if (is.numeric(index)) return(list(matrix_positions(index, d)))
      if (is.character(index)) return(list(matrix_positions(named_positions(index, dimnames(x)), d)))
    }
    return(list(positions_along(index, prod(d), names(x))))
  }
  if (length(given) != length(d)) stop("incorrect number of subscripts", call. = FALSE)
  dn <- dimnames(x)
  lapply(seq_along(given), function(k) {
    if (is_empty[k]) NULL else positions_along(...elt(k), d[k], dn[[k]])
  })
}

# `values` as a buffer of `type` stores them. A value the type cannot hold
# ("abc" or 3e9 for an integer buffer, 1.5 for an integer or raw one, 300
# for a raw one, 2 for a logical one) is an error, where as.vector() would
# store NA, 00, a truncated number or TRUE; `what` names the values in the
# message.
stored_values <- function(values, type, what) {
  cannot <- function(why) {
    stop(sprintf("%s cannot be stored in a buffer of type %s: %s", what, type, why), call. = FALSE)
  }
  # as.vector() of a list, a complex number, a string or a raw byte stores it
  # without a warning where the checks below refuse the same number given
  # as a double (1.5 into integers, 2 into logicals): each is made the
  # double (or string) it stands for first.
  if (is.list(values)) {
    if (!all(vapply(values, function(v) is.atomic(v) && length(v) == 1L, TRUE))) {
      cannot("a list whose elements are not all single values")
    }
    values <- unlist(values, use.names = FALSE)
  }
  if (is.complex(values) && type != "complex") {
    if (any(Im(values) != 0, na.rm = TRUE)) cannot("imaginary parts discarded in coercion")
    values <- Re(values)
  }
  if (is.raw(values) && type == "logical") values <- as.integer(values)
  if (is.character(values) && type %in% c("integer", "raw")) {
    numbers <- suppressWarnings(as.numeric(values))
    if (any(is.na(numbers) & !is.na(values))) cannot("a string that is not a number")
    values <- numbers
  }
  if (type %in% c("integer", "raw") && is.double(values)) {
    finite <- values[is.finite(values)]
    if (any(finite != trunc(finite))) {
      stop(sprintf("%s cannot be stored in a buffer of type %s: it is not a whole number", what,
                   type), call. = FALSE)
    }
  }
  if (type == "logical" && is.numeric(values) && any(!values %in% c(0, 1, NA))) {
    stop(sprintf("%s cannot be stored in a buffer of type logical: a number other than 0 or 1",
                 what), call. = FALSE)
  }
  # A value as.vector() refuses (a function) is the same mistake as one it
  # warns about: said here, not as an error of as.vector()'s call. The
  # warning's handler is the outer one: tryCatch() nests its handlers in
  # reverse order, and an inner one would catch this refusal again.
  refused <- function(condition) {
    stop(sprintf("%s cannot be stored in a buffer of type %s: %s", what, type,
                 conditionMessage(condition)), call. = FALSE)
  }
  stored <- tryCatch(as.vector(values, type), error = refused, warning = refused)
  # as.vector() turns "" (and "NA") into NA without a warning.
  if (is.character(values) && type != "character" && any(is.na(stored) & !is.na(values))) {
    stop(sprintf("%s cannot be stored in a buffer of type %s: a string that is not a number",
                 what, type), call. = FALSE)
  }
  stored
}

# Positions along one dimension of extent n, as R's `[<-` reads `index`:
# positive numbers are passed on as they are (the engine checks them). An
# NA in a numeric or logical index stays NA (see `[<-.shmr_buffer`); a name
# that is not among the labels is out of bounds.
positions_along <- function(index, n, labels) {
  if (is.numeric(index) && !is.object(index) && !anyNA(index) &&
      (!length(index) || (min(index) >= 1 && max(index) < Inf))) {
    return(index)
  }
  if (!typeof(index) %in% c("double", "integer", "logical", "character", "NULL")) {
    stop(sprintf("invalid subscript type '%s'", typeof(index)), call. = FALSE)
  }
  out_of_bounds <- function() stop("subscript out of bounds", call. = FALSE)
  if (is.character(index)) {
    positions <- match(index, labels)
    if (anyNA(positions)) out_of_bounds()
    return(positions)
  }
  # A logical index longer than the extent would make R lengthen a vector.
  if (is.logical(index)) {
    if (length(index) > n) out_of_bounds()
    return(seq_len(n)[index])
  }
  # R takes an infinite position as it takes NA.
  missing <- is.na(index) | (is.numeric(index) & is.infinite(index))
  if (any(missing) && any(index[!missing] < 0)) {
    stop("only 0's may be mixed with negative subscripts", call. = FALSE)
  }
  positions <- seq_len(n)[index[!missing]]
  if (anyNA(positions)) out_of_bounds()
  if (any(missing)) c(positions, NA_integer_) else positions
}

# A character matrix subscript (one column of dimnames per dimension) as
# the numeric one R makes of it: an NA name stays NA, an unknown one is out
# of bounds.
named_positions <- function(index, dn) {
  if (is.null(dn)) stop("no 'dimnames' attribute for array", call. = FALSE)
  positions <- vapply(seq_len(ncol(index)), function(k) match(index[, k], dn[[k]]),
                      integer(nrow(index)))
  positions <- matrix(positions, nrow(index), ncol(index))
  if (any(is.na(positions) & !is.na(index))) stop("subscript out of bounds", call. = FALSE)
  positions
}

# Linear positions of the rows of a matrix subscript (one column per
# dimension), as x[m] <- value uses them: a row with a zero selects nothing,
# one with an NA is NA.
matrix_positions <- function(index, d) {
  if (any(index < 0, na.rm = TRUE)) {
    stop("negative values are not allowed in a matrix subscript", call. = FALSE)
  }
  index <- trunc(index)
  index <- index[rowSums(index == 0, na.rm = TRUE) == 0, , drop = FALSE]
  if (any(t(index) > d, na.rm = TRUE)) stop("subscript out of bounds", call. = FALSE)
  strides <- c(1, cumprod(d)[-length(d)])
  as.vector((index - 1) %*% strides) + 1
}
