# Untrusted names given to map_shared() and untrusted states arriving through
# unserialize() never open anything outside shmr's namespace: a region file
# "shmr_<name>" in the shm directory. Each test works in another process with
# a private shm directory full of decoys, every one of which holds a valid
# region, so opening any of them would succeed and be seen.

# In another process: a private shm directory `dir` (SHMR_SHM_DIR) holding a
# real region (`name`, the doubles 1:3), and decoys holding a copy of its
# bytes under names outside the namespace: other programs' shared memory, a
# file next to the directory, symlinks, a FIFO, a directory. Then runs
# `probe(env)` with env$name, env$dir, env$stream (serialize() of a view of
# the region) and returns its value.
with_decoys <- function(probe) {
  in_other_process(function(probe, replace_string) {
    parent <- tempfile("hostile")
    dir.create(parent, mode = "0700")
    dir <- file.path(parent, "shm")
    dir.create(dir, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = dir)
    x <- share(c(1, 2, 3), backing = "shm", name = "real")
    name <- shared_name(x)
    bytes <- readBin(file.path(dir, name), "raw", file.size(file.path(dir, name)))
    plant <- function(path) {
      writeBin(bytes, path)
      Sys.chmod(path, "0600")
    }
    # Other programs' shared memory, and files outside the directory.
    for (decoy in c("sem.shmr_real", "pulse-shm-12345", "real", "shmr", "shmr_", ".shmr_real",
                    "SHMR_real", "shmr-real")) {
      plant(file.path(dir, decoy))
    }
    plant(file.path(parent, "shmr_outside"))
    plant(file.path(parent, "outside"))
    file.symlink(file.path(parent, "shmr_outside"), file.path(dir, "shmr_link"))
    file.symlink(file.path(dir, name), file.path(dir, "shmr_link_to_real"))
    file.symlink(parent, file.path(dir, "shmr_up"))
    dir.create(file.path(dir, "shmr_dir"))
    plant(file.path(dir, "shmr_dir", "shmr_real"))
    system2("mkfifo", file.path(dir, "shmr_fifo"))
    env <- list(name = name, dir = dir, parent = parent, replace_string = replace_string,
                stream = serialize(x, NULL), x = x)
    probe(env)
  }, list(probe = probe, replace_string = replace_serialized_string))
}

# The same, with env$legacy(state): env$stream as format version 1 of shmr
# wrote it, its state the string `state` (raw bytes, NULL for NA).
with_decoys_legacy <- function(probe) {
  wrapped <- function(env) {
    env$legacy <- function(state) legacy(env$stream, charToRaw("real"), state)
    probe(env)
  }
  environment(wrapped) <- list2env(list(probe = probe, legacy = as_legacy_stream),
                                   parent = globalenv())
  with_decoys(wrapped)
}

test_that("hostile names given to map_shared() open nothing outside the namespace", {
  got <- with_decoys(function(env) {
    hostile <- c(
      "../shmr_outside", "shmr_../shmr_outside", "shmr_../../outside", "../outside",
      "/dev/shm/shmr_real", paste0(env$dir, "/shmr_real"), paste0(env$parent, "/outside"),
      "shmr_up/shmr_outside", "shmr_dir/shmr_real", "shmr_real/", "/", "//", ".", "..",
      "shmr_.", "shmr_..", "~", "~/shmr_real", "shmr_real\n", " shmr_real", "shmr_real ",
      "shmr_r\u00e9al", "\u00e9", "shmr_real\u200b", "shmr_\xff", "sem.shmr_real",
      "pulse-shm-12345", "SHMR_real", "shmr-real", ".shmr_real", "shmr_real;rm",
      "shmr_real*", "shmr_re?l", "shmr_real[1", "shmr_real[0]", "shmr_real@", "shmr_real:0",
      paste0("shmr_", strrep("a", 196)), strrep("x", 5000), strrep("../", 100),
      paste0("shmr_real", strrep("[1]", 2000))
    )
    Encoding(hostile[hostile == "shmr_\xff"]) <- "bytes"
    lapply(hostile, function(h) {
      tryCatch({
        y <- map_shared(h)
        if (is.null(y)) "NULL" else paste("mapped:", paste(fetch(y), collapse = ","))
      }, error = function(e) paste("error:", conditionMessage(e)))
    })
  })
  results <- unlist(got)
  # Nothing was mapped: every name is refused (NULL) or not found; none
  # reached a decoy.
  expect_false(any(startsWith(results, "mapped:")), info = paste(results, collapse = "\n"))
  errors <- results[startsWith(results, "error:")]
  expect_true(all(grepl("^error: shmr: (no shared region named|.*not a list|.*past the end)", errors)),
              info = paste(errors, collapse = "\n"))
})

test_that("names that are well formed but not regions are refused clearly", {
  got <- with_decoys(function(env) {
    probe <- function(n) {
      tryCatch({
        y <- map_shared(n)
        if (is.null(y)) "NULL" else paste("mapped:", paste(fetch(y), collapse = ","))
      }, error = function(e) paste("error:", conditionMessage(e)))
    }
    list(
      real = probe(env$name), link = probe("shmr_link"), link_real = probe("shmr_link_to_real"),
      up = probe("shmr_up"), dir = probe("shmr_dir"), fifo = probe("shmr_fifo"),
      prefix_only = probe("shmr_"), missing = probe("shmr_nothing_here")
    )
  })
  expect_identical(got$real, "mapped: 1,2,3")
  expect_match(got$link, "symbolic link")
  expect_match(got$link_real, "symbolic link")
  expect_match(got$up, "symbolic link")
  expect_match(got$dir, "^error: shmr: .*(not a regular file|Is a directory)")
  expect_match(got$fifo, "not a regular file")
  expect_identical(got$prefix_only, "NULL")
  expect_match(got$missing, "no shared region named 'shmr_nothing_here'")
})

test_that("other programs' files in the real /dev/shm are never mapped", {
  # A file of another program holding a valid region's bytes: map_shared()
  # must not reach it whatever its name, since only "shmr_<name>" is ours.
  x <- share(c(4, 5, 6), backing = "shm")
  decoy <- file.path("/dev/shm", paste0("shmr-test-decoy-", Sys.getpid()))
  file.copy(region_file(shared_name(x)), decoy)
  Sys.chmod(decoy, "0600")
  on.exit(unlink(decoy), add = TRUE)
  expect_null(map_shared(basename(decoy)))
  expect_error(map_shared(paste0("shmr_", basename(decoy))),
               "no shared region named 'shmr_shmr-test-decoy-")
  expect_null(map_shared(decoy))
  expect_null(map_shared(paste0("../shm/", basename(decoy))))
  # Whatever else lives in /dev/shm (other programs, other users) is refused
  # or not found, never mapped.
  others <- setdiff(list.files("/dev/shm", all.files = TRUE, no.. = TRUE),
                    grep("^shmr_", list.files("/dev/shm"), value = TRUE))
  for (other in head(others, 50)) {
    got <- tryCatch(map_shared(other), error = function(e) "error")
    expect_true(is.null(got) || identical(got, "error"), info = other)
  }
})

test_that("remove_shared() leaves another program's file under a region's name alone", {
  restore <- use_private_shm()
  on.exit(restore(), add = TRUE)
  foreign <- file.path(Sys.getenv("SHMR_SHM_DIR"), "shmr_not_ours")
  writeLines("someone else's data", foreign)
  empty <- file.path(Sys.getenv("SHMR_SHM_DIR"), "shmr_empty")
  file.create(empty)
  expect_error(remove_shared("not_ours"), "shmr_not_ours is not a shmr region .*not removed")
  expect_false(remove_shared(foreign))
  expect_error(remove_shared("empty"), "not a shmr region")
  expect_identical(readLines(foreign), "someone else's data")
  expect_true(file.exists(empty))
  # A region whose bytes are damaged after the magic is still shmr's to remove.
  x <- share(c(1, 2, 3), name = "damaged", persist = TRUE)
  file <- file.path(Sys.getenv("SHMR_SHM_DIR"), shared_name(x))
  rm(x)
  invisible(gc())
  bytes <- readBin(file, "raw", file.size(file))
  bytes[9:64] <- as.raw(0xff)
  writeBin(bytes, file)
  expect_true(remove_shared("damaged"))
  expect_false(file.exists(file))
})

test_that("hostile serialized states (version 1 streams) open nothing outside the namespace", {
  got <- with_decoys_legacy(function(env) {
    edit <- env$legacy
    try_unserialize <- function(stream) {
      tryCatch({
        y <- unserialize(stream)
        paste("mapped:", paste(y[], collapse = ","))
      }, error = function(e) paste("error:", conditionMessage(e)))
    }
    states <- c(
      "../shmr_outside:0", "shmr_../shmr_outside:0", "../outside:0", "/dev/shm/shmr_real:0",
      paste0(env$dir, "/shmr_real:0"), paste0(env$parent, "/outside:0"), "shmr_up/shmr_outside:0",
      "shmr_dir/shmr_real:0", "shmr_link:0", "shmr_link_to_real:0", "shmr_fifo:0", "shmr_dir:0",
      "sem.shmr_real:0", "pulse-shm-12345:0", "real:0", ".shmr_real:0", "SHMR_real:0",
      "shmr_r\u00e9al:0", "shmr_real", "shmr_real:", ":0", ":", "", "shmr_real:-1",
      "shmr_real:1e3", "shmr_real: 0", "shmr_real:0 ", "shmr_real:0x0", "shmr_real:99999999999999999999",
      "shmr_real:18446744073709551615", "shmr_real:1000", "shmr_real[1]:0", "shmr_real@dim:0",
      paste0("shmr_", strrep("a", 196), ":0"), paste0(strrep("x", 100000), ":0"),
      paste0(strrep("../", 1000), "shmr_outside:0")
    )
    out <- lapply(states, function(s) try_unserialize(edit(charToRaw(enc2utf8(s)))))
    names(out) <- states
    out$na <- try_unserialize(edit(NULL))
    out$nul <- try_unserialize(edit(c(charToRaw("shmr_real"), as.raw(0), charToRaw(":0"))))
    out$nul_after <- try_unserialize(edit(c(charToRaw("shmr_real:0"), as.raw(0))))
    out$latin1 <- try_unserialize(edit(c(charToRaw("shmr_r"), as.raw(0xe9), charToRaw("al:0"))))
    out$unedited <- try_unserialize(env$stream)
    out$legacy <- try_unserialize(edit(charToRaw("shmr_real:0")))
    out
  })
  expect_identical(got$unedited, "mapped: 1,2,3")
  # A stream written by format version 1 of shmr still reads.
  expect_identical(got$legacy, "mapped: 1,2,3")
  got$unedited <- NULL
  got$legacy <- NULL
  results <- unlist(got)
  expect_false(any(startsWith(results, "mapped:")), info = paste(names(results), results, collapse = "\n"))
  # Malformed states are refused before any file is touched; a well-formed
  # one leads to a missing region or to a decoy that is refused (a symbolic
  # link, not a regular file); R itself refuses NUL bytes.
  for (i in seq_along(got)) {
    # The state is refused when the object is used: unserialize() itself
    # never fails for a shared object (it comes back unavailable).
    expect_match(got[[i]], paste0(
      "^error: (shmr: (shared region '[^']*' is not available here: )?",
      "(serialized shared object has an invalid state|malformed serialized shared",
      " object|no shared region named|'shmr_[a-z_]+' is (a symbolic link|not a regular file)|",
      "shared region 'shmr_real' is corrupt: node 1000 does not)|.*embedded nul)"),
      label = names(got)[i])
  }
  expect_match(got[["shmr_real:1000"]], "node 1000 does not exist")
  expect_match(got$na, "malformed serialized shared object")
})

test_that("hostile compact serialized states open nothing outside the namespace", {
  got <- with_decoys(function(env) {
    # The compact state of the view of "shmr_real" (node 0) is "real".
    edit <- function(new) env$replace_string(env$stream, "real", new)
    try_unserialize <- function(stream) {
      tryCatch({
        y <- unserialize(stream)
        paste("mapped:", paste(y[], collapse = ","))
      }, error = function(e) paste("error:", conditionMessage(e)))
    }
    states <- c(
      "../shmr_outside", "_../shmr_outside", "../outside", "/dev/shm/shmr_real",
      paste0(env$dir, "/shmr_real"), paste0(env$parent, "/outside"), "up/shmr_outside",
      "dir/shmr_real", "link", "link_to_real", "fifo", "dir", "shmr_real", "réal", "real:",
      ":0", ":", "real:-1", "real:1e3", "real: 0", "real:0 ", "real:0x0",
      "real:99999999999999999999", "real:18446744073709551615", "real:1000", "real[1]",
      "real@dim", "real;origin=x", "real;colour=red", "real;origin", "real;origin=;origin=",
      "real;made=1.2", "real;made=x.y.z", "real;made=1.2.3.4", "real;made=-1.2.3",
      "real;made=1.2.3;made=1.2.3", "real;made=1.2.3",
      "real:0;", "real;", strrep("a", 196), strrep("x", 100000),
      paste0(strrep("../", 1000), "shmr_outside")
    )
    out <- lapply(states, function(s) try_unserialize(edit(charToRaw(enc2utf8(s)))))
    names(out) <- states
    out$empty <- try_unserialize(edit(raw(0)))
    out$nul <- try_unserialize(edit(c(charToRaw("real"), as.raw(0))))
    out$latin1 <- try_unserialize(edit(c(charToRaw("r"), as.raw(0xe9), charToRaw("al"))))
    out$unedited <- try_unserialize(env$stream)
    out$node <- try_unserialize(edit(charToRaw("real:0")))
    out
  })
  expect_identical(got$unedited, "mapped: 1,2,3")
  expect_identical(got$node, "mapped: 1,2,3")
  got$unedited <- NULL
  got$node <- NULL
  results <- unlist(got)
  expect_false(any(startsWith(results, "mapped:")), info = paste(names(results), results, collapse = "\n"))
  # The state is refused when the object is used: unserialize() itself
  # never fails for a shared object (it comes back unavailable).
  for (i in seq_along(got)) {
    expect_match(got[[i]], paste0(
      "^error: shmr: (shared region '[^']*' is not available here: )?",
      "(serialized shared object (has an invalid (state|origin)|carries fields)|malformed ",
      "serialized shared object|no shared region named|'shmr_[a-z_]+' is (a symbolic link|not ",
      "a regular file)|shared region 'shmr_real' is corrupt: node 1000 does not|",
      "the region this object was read from)"),
      label = names(got)[i])
  }
  expect_match(got[["real:1000"]], "node 1000 does not exist")
  # The remote mode's field is known, and its value checked; other keys are
  # refused as a newer version's.
  expect_match(got[["real;origin=x"]], "has an invalid origin")
  expect_match(got[["real;colour=red"]], "carries fields this version of shmr does not know")
  expect_match(got[["real;origin"]], "has an invalid state")
  expect_match(got[["real;origin=;origin="]], "has an invalid state")
  expect_match(got$empty, "malformed serialized shared object")
  # Which region of a name of the user's choosing the object was read from:
  # checked, and another region of that name is never read in its place.
  expect_match(got[["real;made=1.2"]], "malformed made field")
  expect_match(got[["real;made=1.2.3;made=1.2.3"]], "has an invalid state")
  expect_match(got[["real;made=1.2.3"]], "the region this object was read from .* newer region")
})

test_that("a shared vector serializes to at most 130 bytes, whatever its length", {
  for (x in list(runif(10), 1:1e6, c(TRUE, NA), as.raw(1:200), c("a", "b"))) {
    s <- share(x)
    expect_lte(length(serialize(s, NULL)), 130)
    expect_identical(unserialize(serialize(s, NULL)), x)
    close(s)
  }
})

test_that("a state naming a node of another type is refused", {
  got <- in_other_process(function(replace_string) {
    dir <- tempfile("shm")
    dir.create(dir, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = dir)
    x <- share(list(d = c(1.5, 2.5), s = c("a", "b"), i = 1:2, l = list(1)), backing = "shm")
    name <- shared_name(x)
    stream <- serialize(x$d, NULL)
    # The double view's state pointed at the character, integer and list
    # nodes; and its class name changed to the character view's.
    id <- sub("^shmr_", "", name)
    at_node <- function(part) {
      node <- shared_info(x[[part]])$node
      state <- charToRaw(paste0(id, ":", node))
      unserialize(replace_string(stream, id, state))
    }
    # Unserializing never fails; using the object does.
    attempt <- function(expr) tryCatch({ expr[]; "ok" }, error = function(e) conditionMessage(e))
    string_class <- replace_string(stream, "shmr_double", charToRaw("shmr_string"))
    list(
      same = attempt(stopifnot(identical(at_node("d"), c(1.5, 2.5)))),
      string = attempt(at_node("s")), integer = attempt(at_node("i")), list = attempt(at_node("l")),
      class_swapped = attempt(unserialize(string_class))
    )
  }, list(replace_string = replace_serialized_string))
  expect_identical(got$same, "ok")
  expect_match(got$string, "^shmr: .*refers to a node of another type")
  expect_match(got$integer, "^shmr: .*refers to a node of another type")
  expect_match(got$list, "^shmr: .*not a vector")
  expect_match(got$class_swapped, "^shmr: .*refers to a node of another type")
})
