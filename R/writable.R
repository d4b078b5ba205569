# Where a copy of a writable share is being written (src/writable_copies.h).
# R copies such a share before changing it when it may be referenced from
# more than one place; the engine then asks which variable the copy is for,
# and these helpers say which environments the running code may assign in.

# The environments of the code running now, innermost first (this
# function's own frame left out), each with the kind of code that runs
# there, and the global environment last; and whether each is the frame of
# a replacement function that a complex assignment called (`x[i, j] <- v`
# calls `[<-`(`*tmp*`, i, j, value = v), `*tmp*` holding the value of x).
writer_environments <- function() {
  n <- sys.nframe() - 1L
  envs <- vector("list", n + 1L)
  kinds <- character(n + 1L)
  replacing <- logical(n + 1L)
  for (i in seq_len(n)) {
    k <- n + 1L - i
    envs[[i]] <- sys.frame(k)
    kinds[i] <- code_kind(sys.function(k), envs[[i]])
    call <- sys.call(k)
    replacing[i] <- length(call) >= 2L && identical(call[[2L]], quote(`*tmp*`))
  }
  envs[[n + 1L]] <- globalenv()
  kinds[n + 1L] <- "script"
  list(envs, kinds, replacing)
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
