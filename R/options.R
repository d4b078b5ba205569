# Argument checks and the settings behind share()'s backings.

check_flag <- function(value, arg) {
  if (!is.logical(value) || length(value) != 1L || is.na(value)) {
    stop(sprintf("`%s` must be TRUE or FALSE", arg), call. = FALSE)
  }
}

# One of `choices`, as match.arg() takes it (the whole vector of choices
# means the first, an unambiguous prefix a choice), but refused with an
# error that names the argument: match.arg()'s own speaks of 'arg'.
choose_arg <- function(value, choices, arg) {
  if (is.null(value) || identical(value, choices)) return(choices[1L])
  if (is.character(value) && length(value) == 1L && !is.na(value) && nzchar(value)) {
    found <- pmatch(value, choices)
    if (!is.na(found)) return(choices[found])
  }
  stop(sprintf("`%s` should be one of %s, not %s", arg,
               paste0("\"", choices, "\"", collapse = ", "), describe_value(value)), call. = FALSE)
}

# A short description of a value given where another was expected.
describe_value <- function(value) {
  if (is.null(value)) return("NULL")
  if (is.function(value)) return("a function")
  if (is.environment(value)) return("an environment")
  if (!is.atomic(value)) return(paste("an object of type", typeof(value)))
  if (length(value) != 1L) return(sprintf("a %s vector of length %d", typeof(value), length(value)))
  if (is.na(value)) return("NA")
  if (is.character(value)) return(sprintf("'%s'", shorten(value)))
  format(value)
}

# A whole number (a count of bytes or workers) for a message, in full and
# with its thousands marked: "," as R marks them, "." where options(OutDec)
# makes "," the decimal mark (R warns of a thousands mark that is also the
# decimal mark, a warning options(warn = 2) makes an error).
format_count <- function(x) {
  mark <- if (identical(getOption("OutDec"), ",")) "." else ","
  format(x, big.mark = mark, scientific = FALSE, trim = TRUE)
}

# A name the user gave, cut for a message: a name of thousands of
# characters would bury the message itself.
shorten <- function(text, width = 60L) {
  text <- enc2utf8(as.character(text))
  long <- !is.na(text) & nchar(text, type = "chars", allowNA = TRUE) > width
  long[is.na(long)] <- FALSE
  text[long] <- paste0(substr(text[long], 1L, width - 3L), "...")
  text
}

# R's file functions refuse a path longer than its buffer (4096 bytes) with
# an error that quotes 1000 characters of it (or, for some, a warning).
is_too_long_for_a_path <- function(path) nchar(path, type = "bytes") >= 4096L

check_path_length <- function(path, what) {
  if (is_too_long_for_a_path(path)) {
    stop(sprintf("%s is a path of %d bytes, longer than a path can be ('%s')", what,
                 nchar(path, type = "bytes"), shorten(path)), call. = FALSE)
  }
}

check_region_name <- function(name, arg = "name") {
  if (!is.character(name) || length(name) != 1L || is.na(name) ||
      !is_region_name_text(name) || name %in% c(".", "..")) {
    stop(sprintf("`%s` is %s, but a region name must be 1 to 100 letters, digits, '.', '_' or '-', other than '.' and '..'",
                 arg, describe_value(name)), call. = FALSE)
  }
}

# 1 to 100 letters, digits, '.', '_' or '-'. Not one pattern with `{1,100}`:
# R's regular expressions build an automaton for the bounded repetition
# anew on each call, 0.77 ms, most of the time of a named share().
is_region_name_text <- function(name) {
  nchar(name, "bytes") <= 100L && grepl("^[A-Za-z0-9._-]+$", name, useBytes = TRUE)
}

# The directory of file-backed regions: `path` when given, else a private
# directory that lives as long as this session (or, for persistent regions,
# the user's cache directory).
data_directory <- function(path, persist) {
  session_default <- is.null(path) && !persist
  if (session_default) {
    known <- session_directory$path
    if (!is.null(known) && dir.exists(known)) return(known)
  }
  if (is.null(path)) {
    path <- if (persist) {
      tools::R_user_dir("shmr", "cache")
    } else {
      file.path(tempdir(), "shmr")
    }
    if (!dir.exists(path)) dir.create(path, recursive = TRUE, mode = "0700")
  }
  if (is.character(path) && length(path) == 1L && !is.na(path)) check_path_length(path, "`path`")
  if (!is.character(path) || length(path) != 1L || is.na(path) || !dir.exists(path)) {
    stop("`path` must be an existing directory", call. = FALSE)
  }
  path <- normalizePath(path, mustWork = TRUE)
  if (session_default) session_directory$path <- path
  path
}

# The session's default directory once made and resolved: every share()
# with backing "auto" passes it, in case shm turns out to be full.
session_directory <- new.env(parent = emptyenv())

# A numeric setting: the option `option`, else the environment variable
# `env`. NULL when neither is set; else `value` (NA unless one number),
# `given` and `source` (which of the two, for a message).
numeric_setting <- function(option, env) {
  given <- getOption(option)
  if (is.null(given)) {
    given <- Sys.getenv(env, "")
    if (!nzchar(given)) return(NULL)
    source <- sprintf("the environment variable %s", env)
  } else {
    source <- sprintf("options(%s)", option)
  }
  value <- if (is.numeric(given) || is.character(given)) suppressWarnings(as.numeric(given))
  if (length(value) != 1L) value <- NA_real_
  list(value = value, given = given, source = source)
}

# Bytes of /dev/shm that "auto" may count on; 0 means no cap. Any other
# value is an error: read as "no cap", a typo would let a share fill /dev/shm.
shm_capacity <- function() {
  setting <- numeric_setting("shmr.shm_capacity", "SHMR_SHM_CAPACITY")
  if (is.null(setting)) return(0)
  if (is.na(setting$value) || setting$value < 0) {
    stop(setting$source, " must be a number of bytes >= 0 (0 for no cap), not ",
         describe_value(setting$given), call. = FALSE)
  }
  # No file system is larger; and the engine takes it as a 64-bit count,
  # into which Inf does not convert.
  min(setting$value, 2^62)
}

fallback_explained <- new.env(parent = emptyenv())

# Takes the object's shared_info(), not the object, and signals a plain base
# R condition: cli's formatting and messages record the calling frames,
# share()'s among them, and an object referenced from a recorded frame counts
# as referenced twice (a writable share could then no longer be changed in
# place).
explain_fallback <- function(info) {
  if (is.null(info) || info$backing != "mmap" || isTRUE(fallback_explained$done)) {
    return(invisible())
  }
  fallback_explained$done <- TRUE
  text <- sprintf(paste0(
    "'%s' has too little room for this object (%s), so shmr shares it through a ",
    "memory-mapped file in '%s'.\nThis message is shown once per session.\n"
  ), shm_directory(), format(structure(info$size, class = "object_size"), units = "auto"),
  dirname(info$path))
  message(structure(class = c("shmr_backing_message", "message", "condition"),
                    list(message = text, call = NULL)))
}

shm_directory <- function() .Call(shmr_shm_directory)

# For tests: show the fallback message again.
reset_fallback_message <- function() fallback_explained$done <- FALSE
