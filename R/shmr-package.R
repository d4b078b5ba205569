#' shmr: zero-copy shared memory for R objects
#'
#' Write an R object once into shared memory with [share()] and use that one
#' physical copy from any R process of the same user with [map_shared()], or
#' by sending the shared object itself: it serializes as its name.
#'
#' @keywords internal
#' @useDynLib shmr, .registration = TRUE
"_PACKAGE"

.onLoad <- function(libname, pkgname) {
  # Regions this process still owns are unlinked when R exits cleanly, even
  # if their objects were never garbage collected.
  reg.finalizer(exit_hook, function(e) {
    .Call(shmr_release_all)
    discard_own_handoffs()
    # Objects pool workers handed to a call of this process in replies it
    # never read (the call stopped first).
    if (identical(handoffs$pid, Sys.getpid())) .Call(shmr_remove_untaken)
  }, onexit = TRUE)
  # Never a reason not to load.
  try(note_remote_caller(), silent = TRUE)
  chunk_runner <<- uncompiled_chunk_runner()
}

exit_hook <- new.env(parent = emptyenv())

# Variables of the expressions sent to mirai daemons, supplied there by name.
utils::globalVariables(c("run", "task", "packages", "init", "setup", "release", "regions"))
