# Where a copy of a writable share is being written (src/writable_copies.h).
# R copies such a share before changing it when it may be referenced from
# more than one place; the engine then asks which variable the copy is for,
# and these helpers say which environments the running code may assign in.

# The environments of the code running now, innermost first (this
# function's own frame left out), each with the kind of code that runs
# there, and the global environment last; and whether each is the frame of
# a replacement function that a complex assignment called (`x[i, j] <- v`
# calls `[<-`(`*tmp*`, i, j, value = v), `*tmp*` holding the value of x);
# and the environment each was called from, where that assignment runs.
writer_environments <- function() {
  n <- sys.nframe() - 1L
  envs <- vector("list", n + 1L)
  kinds <- character(n + 1L)
  replacing <- logical(n + 1L)
  callers <- vector("list", n + 1L)
  parents <- sys.parents()
  for (i in seq_len(n)) {
    k <- n + 1L - i
    envs[[i]] <- sys.frame(k)
    kinds[i] <- code_kind(sys.function(k), envs[[i]])
    call <- sys.call(k)
    replacing[i] <- length(call) >= 2L && identical(call[[2L]], quote(`*tmp*`))
    callers[[i]] <- if (parents[k] > 0L) sys.frame(parents[k]) else globalenv()
  }
  envs[[n + 1L]] <- globalenv()
  kinds[n + 1L] <- "script"
  callers[[n + 1L]] <- globalenv()
  list(envs, kinds, replacing, callers)
}

# "script": code evaluated as given, in the global environment or wherever
# eval() evaluates it (source(), knitr, local(), a test);
# "function": the frame of a function defined outside any package;
# "package": code of a package, base R included, which computes new values.
code_kind <- function(fun, env) {
  # eval() evaluates code it was given (by source(), knitr, local(), a test).
  if (is.primitive(fun)) return("script")
  if (identical(topenv(environment(fun)), globalenv())) "function" else "package"
}

# NULL, or which column makes a change that writes through a partial one:
# a column of a writable share that a data frame's `[<-` method, running
# now, changes as well but cannot write to shared memory. The method changes
# the columns one after another, and the engine asks this at the first write
# to shared memory, while nothing has changed yet; `assigned` is the object
# the assignment changes, as it was before (NULL when unknown).
partial_change_refusal <- function(assigned) {
  # It reads the method's own variables: a base R whose `[<-.data.frame`
  # keeps others gets the behaviour from before the check, not an error.
  tryCatch(method_change_refusal(assigned), error = function(e) NULL)
}

# partial_change_refusal(), for a data frame's `[<-` method running now
# that changes several columns (`w[i, ] <- v`), asked when one of them is
# about to become a new object instead of being written in place (a factor
# first): its reason names that column and why. NULL for one column, whose
# own refusal says more, and outside the method.
several_columns_refusal <- function(assigned) {
  for (k in rev(seq_len(sys.nframe() - 1L))) {
    if (!identical(sys.function(k), base::`[<-.data.frame`)) next
    columns <- tryCatch(changed_columns(sys.frame(k)), error = function(e) NULL)
    if (length(columns) < 2L) return(NULL)
    return(partial_change_refusal(assigned))
  }
  NULL
}

method_change_refusal <- function(assigned) {
  for (k in rev(seq_len(sys.nframe() - 1L))) {
    if (!identical(sys.function(k), base::`[<-.data.frame`)) next
    frame <- sys.frame(k)
    # Its columns were all found fit at its first write: asked again at each
    # column's, the method would take time quadratic in their number.
    if (exists(".shmr_columns_fit", envir = frame, inherits = FALSE)) next
    why <- column_refusal(original_columns(frame, assigned), changed_columns(frame),
                          assigned_values(frame))
    if (!is.null(why)) return(why)
    assign(".shmr_columns_fit", TRUE, envir = frame)
  }
  NULL
}

# The columns of the data frame the method in `frame` changes, as they were
# before: its own `x` holds the changed ones in place of those it changed
# already (a factor's private copy, say), so they are taken from the object
# assigned, or the list inside it, that has the column being changed now.
original_columns <- function(frame, assigned) {
  x <- frame$x
  at <- if (exists("thisvar", envir = frame, inherits = FALSE)) frame$v else frame$jj
  now <- .subset2(x, at)
  pending <- list(assigned)
  for (depth in 1:8) {
    deeper <- list()
    for (candidate in pending) {
      if (!is.list(candidate)) next
      if (length(candidate) >= at &&
          .Call(shmr_same_writable_part, .subset2(candidate, at), now)) return(candidate)
      deeper <- c(deeper, Filter(is.list, unclass(candidate)))
    }
    pending <- deeper
  }
  x
}

# Why one of the columns `columns` of `x`, given the values `values` (one
# for each column), stays behind, or NULL.
column_refusal <- function(x, columns, values) {
  for (k in seq_along(columns)) {
    j <- columns[k]
    if (is.na(j) || j > length(x)) next  # a new column is no part of the share
    why <- part_refusal(.subset2(x, j), values[[k]])
    if (!is.null(why)) return(sprintf("column '%s' (%s)", names(x)[j], why))
  }
  NULL
}

# The columns `[<-.data.frame` changes element by element: those of `jseq`
# (`x[i, j] <- v`, computed before its first change), or for a logical
# matrix index (`x[m] <- v`) those the matrix selects. Replacing a whole
# column (`x[j] <- v`) writes nothing through and asks nothing. Positions
# past the data frame's are new columns.
changed_columns <- function(frame) {
  if (exists("thisvar", envir = frame, inherits = FALSE)) {
    which(colSums(frame$i, na.rm = TRUE) > 0)
  } else {
    frame$jseq
  }
}

# The value the method in `frame` assigns to each of changed_columns(): a
# logical matrix index assigns `value` to each; otherwise the method made
# `value` a list of columns and `jvseq` says which goes where.
assigned_values <- function(frame) {
  if (exists("thisvar", envir = frame, inherits = FALSE)) {
    return(rep(list(frame$value), length(changed_columns(frame))))
  }
  lapply(frame$jvseq, function(k) .subset2(frame$value, k))
}

# Why R's `[<-` would not write `value` into the column `x` in shared
# memory, or NULL.
part_refusal <- function(x, value) {
  switch(.Call(shmr_writable_part, x),
    strings = "a character vector, which cannot be changed in place",
    list = "a list, which R changes as a list of its own",
    through = class_refusal(x) %||% widening(x, value)
  )
}

# The `[<-` methods of base R classes that hand the change on to R's own.
passing_on_methods <- function() {
  list(base::`[<-.Date`, base::`[<-.POSIXct`, base::`[<-.difftime`)
}

# NULL, or why R's `[<-`, asked by one of passing_on_methods() running now
# to change `x`, a part of a writable share stored as integers (a Date made
# with structure(1:3, class = "Date")), would put it in a new vector of
# doubles: the method makes the values doubles first (`[<-.Date` gives
# unclass(as.Date(value))), so no values written in place could come out.
class_widening_refusal <- function(x) {
  for (k in rev(seq_len(sys.nframe() - 1L))) {
    fun <- sys.function(k)
    if (!any(vapply(passing_on_methods(), identical, TRUE, fun))) next
    if (!.Call(shmr_same_writable_part, get("x", envir = sys.frame(k)), x)) next
    cls <- oldClass(x)[1L]
    return(sprintf(paste0(
      "its %s values are stored as integers, and R's `[<-` for %s makes the new values doubles, ",
      "which R puts in a new vector of doubles. Give integer values (w[i] <- ",
      "structure(as.integer(v), class = class(w))), or use fetch() for a private copy."), cls, cls))
  }
  NULL
}

# The `[<-` methods of base R classes hand the change on to R's own `[<-`
# on the share (NextMethod()), which writes through; any other method
# (`[<-.factor` unclasses its argument first) changes a copy of its own.
# NULL, or why the class of `x` keeps its change from shared memory.
class_refusal <- function(x) {
  passing_on <- passing_on_methods()
  for (cls in oldClass(x)) {
    method <- utils::getS3method("[<-", cls, optional = TRUE, envir = globalenv())
    if (is.null(method)) next
    if (any(vapply(passing_on, identical, TRUE, method))) return(NULL)
    return(sprintf("a %s, whose `[<-` method changes a copy of its own", cls))
  }
  NULL
}

# R's `[<-` puts values of a wider type (a double into an integer vector)
# in a new vector of that type, a private one, and refuses values a raw
# vector cannot take; both only once the columns before were written.
# (A Date or POSIXct column's method first makes the value a double,
# unless it is of the class already and stored as integers.)
widening <- function(x, value) {
  classes <- c("Date", "POSIXct")
  if (inherits(x, classes) && !(is.integer(value) && inherits(value, classes))) value <- double()
  types <- c("logical", "integer", "double", "complex", "character", "list")
  to <- match(typeof(x), types)
  from <- match(typeof(value), types)
  fits <- if (is.na(to)) identical(typeof(value), typeof(x)) else !is.na(from) && from <= to
  if (fits) return(NULL)
  sprintf("of type %s, given values of type %s, which R puts in a new vector", typeof(x),
          typeof(value))
}
