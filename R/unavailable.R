# Shared objects whose region cannot be had.
#
# Unserializing a shared object never fails: when its region is gone (a
# saved workspace loaded after its session ended, a released region) or
# cannot be fetched from another host, the object comes back unavailable.
# Using it raises an error of class "shmr_region_unavailable" naming the
# region and the reason; loading it warns once per region and process. A
# vector or string whose region exists but could not be mapped (descriptors
# or address space short) maps it at a later use once it can
# (revive_unavailable_view() in src/view_state.cpp). A
# worker that receives one therefore stays alive, and the task that uses it
# fails with that error. These two functions are called from the C++ glue
# (view_state.cpp).

stop_unavailable <- function(region, reason) {
  stop(structure(
    class = c("shmr_region_unavailable", "shmr_error", "error", "condition"),
    list(message = sprintf("shmr: shared region '%s' is not available here: %s", region, reason),
         call = NULL, region = region, reason = reason)
  ))
}

warn_unavailable <- function(region, reason) {
  warn_while_unserializing(structure(
    class = c("shmr_region_unavailable_warning", "warning", "condition"),
    list(message = sprintf(paste0(
      "shmr: shared region '%s' is not available here: %s\nObjects that read it raise an ",
      "error of class \"shmr_region_unavailable\" when used."), region, reason),
      call = NULL, region = region, reason = reason)
  ))
}

# Signals the warning `condition` from code that runs while R unserializes
# (a task's arguments on a worker, readRDS()), where an error would end a
# daemon or fail the whole load: under options(warn = 2) or higher (a
# profile's, or everywhere()'s) it stays a warning, printed at once. So it
# does under options(warning.expression), which R evaluates in place of
# printing a warning no handler caught, whatever options(warn) says (an
# expression that calls stop() would end the daemon too).
warn_while_unserializing <- function(condition) {
  if (isTRUE(getOption("warn") >= 2) || !is.null(getOption("warning.expression"))) {
    old <- options(warn = min(getOption("warn"), 1), warning.expression = NULL)
    on.exit(options(old))
  }
  warning(condition)
}

# TRUE while mirai's error report for a task runs in this process (see
# unavailable_read_for_mirai_report() in src/view.h). That report is
# recognised by its function, mirai:::mk_mirai_error, among the running
# frames; any other caller, or a mirai without that function, gets FALSE.
reading_for_mirai_error_report <- function() {
  if (!isNamespaceLoaded("mirai")) return(FALSE)
  report <- get0("mk_mirai_error", envir = asNamespace("mirai"), inherits = FALSE)
  if (!is.function(report)) return(FALSE)
  !is.null(innermost_frame(function(frame, i) identical(sys.function(i), report)))
}
