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
#' character (dimnames) indices; the value is recycled and converted to the
#' buffer's type. Writes from several processes to the same elements race:
#' give each worker its own part.
#'
#' @param type `"double"`, `"integer"`, `"logical"`, `"raw"` or `"complex"`.
#' @param dim A length (a vector), or the dimensions of a matrix or array.
#' @param init The initial value of every element (`NA`; for raw, `00`).
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
  type <- match.arg(type)
  if (!is.numeric(dim) || !length(dim) || anyNA(dim) || any(dim < 0) || any(dim != round(dim))) {
    stop("`dim` must be non-negative whole numbers", call. = FALSE)
  }
  if (length(init) != 1L) stop("`init` must be a single value", call. = FALSE)
  init <- if (type == "raw" && is.na(init)) as.raw(0) else suppressWarnings(as.vector(init, type))
  options <- list(backing = "auto", readonly = FALSE, data_directory = data_directory(NULL, FALSE),
                  shm_capacity = shm_capacity())
  dims <- as.integer(dim)
  buffer <- .Call(shmr_buffer_create, type, dims, init, options)
  if (length(dims) == 1L) attr(buffer, "dim") <- NULL
  class(buffer) <- "shmr_buffer"
  buffer
}

#' @export
`[<-.shmr_buffer` <- function(x, ..., value) {
  positions <- buffer_positions(x, ...)
  value <- as.vector(value, typeof(x))
  if (length(positions) && !length(value)) stop("replacement has length zero", call. = FALSE)
  .Call(shmr_buffer_write, x, as.numeric(positions), value)
}

#' @export
`[[<-.shmr_buffer` <- function(x, ..., value) {
  if (length(value) != 1L) stop("more elements supplied than there are to replace", call. = FALSE)
  `[<-.shmr_buffer`(x, ..., value = value)
}

#' @export
print.shmr_buffer <- function(x, ...) {
  cat(sprintf("<shmr buffer %s: %s>\n", shared_name(x) %||% "(released)",
              paste(dim(x) %||% length(x), collapse = " x ")))
  print(fetch(x), ...)
  invisible(x)
}

# 1-based linear positions that x[...] <- value would assign.
buffer_positions <- function(x, ...) {
  d <- dim(x) %||% length(x)
  given <- as.list(substitute(list(...)))[-1L]
  is_empty <- vapply(given, function(a) identical(a, quote(expr = )), TRUE)
  if (length(given) == 0L || (length(given) == 1L && is_empty[1L])) return(seq_len(prod(d)))
  if (length(given) == 1L) return(vector_positions(..1, prod(d), names(x)))
  if (length(given) != length(d)) stop("incorrect number of subscripts", call. = FALSE)
  dn <- dimnames(x)
  per_dim <- lapply(seq_along(given), function(k) {
    if (is_empty[k]) return(seq_len(d[k]))
    vector_positions(...elt(k), d[k], dn[[k]])
  })
  strides <- c(1, cumprod(d)[-length(d)])
  positions <- 1
  for (k in seq_along(per_dim)) {
    positions <- outer(positions, (per_dim[[k]] - 1) * strides[k], `+`)
  }
  as.vector(positions)
}

# Positions along one dimension of extent n, as R's `[<-` reads `index`.
vector_positions <- function(index, n, labels) {
  if (is.numeric(index) && !anyNA(index) && all(index >= 1)) {
    positions <- trunc(index)
  } else if (is.character(index)) {
    positions <- match(index, labels)
  } else {
    positions <- seq_len(n)[index]
  }
  if (anyNA(positions) || any(positions > n)) stop("subscript out of bounds", call. = FALSE)
  positions
}
