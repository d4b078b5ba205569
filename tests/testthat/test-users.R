# Regions belong to one Unix user: their files are private (0600, in 0700
# directories), another user can neither read them nor map them, and shmr
# never maps, lists or prunes another user's files. The tests with a real
# second user run when this runs as root (the user `nobody`, through
# setpriv); elsewhere they are skipped.

mode_of <- function(path) format(file.info(path)$mode)

test_that("region files are 0600 and data directories 0700, whatever the umask", {
  old <- Sys.umask("000")
  on.exit(Sys.umask(old), add = TRUE)
  dir <- tempfile("shmr-path")
  dir.create(dir, mode = "0755")
  x <- share(rnorm(10), backing = "shm")
  m <- share(rnorm(10), backing = "mmap")
  p <- share(rnorm(10), backing = "mmap", path = dir)
  w <- share(numeric(10), backing = "shm", readonly = FALSE)
  s <- segment_create(4096, backing = "shm")
  b <- shared_buffer("double", 10)
  expect_identical(mode_of(shared_info(x)$path), "600")
  expect_identical(mode_of(shared_info(w)$path), "600")
  expect_identical(mode_of(segment_info(s)$path), "600")
  expect_identical(mode_of(shared_info(b)$path), "600")
  for (obj in list(m, p)) {
    info <- shared_info(obj)
    expect_identical(mode_of(info$path), "600")
    expect_identical(mode_of(region_file(info$name)), "600")  # the locator
  }
  # The default data directory is private; a directory the user gives keeps
  # its own mode, but the file in it is still private.
  expect_identical(mode_of(dirname(shared_info(m)$path)), "700")
  expect_identical(mode_of(dir), "755")
  for (obj in list(x, m, p, w, b)) close(obj)
  segment_close(s)
})

test_that("the data directory of persistent file-backed regions is private", {
  cache <- tempfile("cache")
  old_cache <- Sys.getenv("R_USER_CACHE_DIR", NA)
  Sys.setenv(R_USER_CACHE_DIR = cache)
  on.exit(if (is.na(old_cache)) Sys.unsetenv("R_USER_CACHE_DIR") else Sys.setenv(R_USER_CACHE_DIR = old_cache),
          add = TRUE)
  x <- share(1:10 + 0, backing = "mmap", persist = TRUE, name = "test_private_persist")
  on.exit(remove_shared("test_private_persist"), add = TRUE)
  path <- shared_info(x)$path
  expect_true(startsWith(path, normalizePath(cache)))
  expect_identical(mode_of(dirname(path)), "700")
  expect_identical(mode_of(path), "600")
})

# Runs the R lines `code` as the user nobody in a fresh R with shmr loaded
# (the library path of this session); returns the value of the last line.
# `input` is saved where that process can read it, as `input`.
as_nobody <- function(code, input = NULL) {
  exchange <- tempfile("shmr-users-", tmpdir = "/tmp")
  dir.create(exchange)
  Sys.chmod(exchange, "0777", use_umask = FALSE)
  on.exit(unlink(exchange, recursive = TRUE), add = TRUE)
  saveRDS(input, file.path(exchange, "input.rds"))
  Sys.chmod(file.path(exchange, "input.rds"), "0644")
  script <- file.path(exchange, "script.R")
  out <- file.path(exchange, "out.rds")
  writeLines(c("library(shmr)", sprintf("input <- readRDS(%s)", deparse(file.path(exchange, "input.rds"))),
               "result <- local({", code, "})", sprintf("saveRDS(result, %s)", deparse(out))), script)
  Sys.chmod(script, "0644")
  status <- system2("setpriv", c("--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                 file.path(R.home("bin"), "Rscript"), "--vanilla", script),
                    env = c(paste0("R_LIBS=", paste(.libPaths(), collapse = ":")), "HOME=/tmp"))
  if (!identical(status, 0L)) stop("the process of user nobody failed")
  readRDS(out)
}

skip_unless_root_with_nobody <- function() {
  skip_on_cran()
  skip_if_not(identical(system2("id", "-u", stdout = TRUE), "0"),
              "needs root to run a process as a second user")
  skip_if(Sys.which("setpriv") == "", "needs setpriv")
  skip_if_not(identical(system2("id", "nobody", stdout = FALSE, stderr = FALSE), 0L),
              "needs the user nobody")
  # shmr must be loadable by nobody from this session's library.
  probe <- tryCatch(as_nobody("packageVersion('shmr')"), error = function(e) NULL)
  skip_if(is.null(probe), "user nobody cannot load shmr from this library")
}

test_that("another user can neither read nor map this user's regions", {
  skip_unless_root_with_nobody()
  x <- share(c(1.5, 2.5, 3.5), backing = "shm")
  m <- share(c(4.5, 5.5), backing = "mmap")
  named <- share(7, name = "test_other_user")
  on.exit(close(named), add = TRUE)
  files <- c(shared_info(x)$path, shared_info(m)$path, region_file(shared_name(m)))
  got <- as_nobody(c(
    "read <- vapply(input$files, function(f) tryCatch({ readBin(f, 'raw', 16); 'read' },",
    "  error = function(e) 'refused', warning = function(w) 'refused'), '')",
    "mapped <- vapply(c(input$names, 'test_other_user'), function(n)",
    "  tryCatch({ map_shared(n); 'mapped' }, error = function(e) conditionMessage(e)), '')",
    "unser <- tryCatch({ suppressWarnings(unserialize(input$stream))[]; 'mapped' },",
    "  error = function(e) conditionMessage(e))",
    "listed <- intersect(shared_regions()$name, input$names)",
    "pruned <- intersect(as.character(prune_shared()), input$names)",
    "removed <- remove_shared('test_other_user')",
    "list(read = unname(read), mapped = unname(mapped), unser = unser, listed = listed,",
    "     pruned = pruned, removed = removed)"
  ), input = list(files = files, names = c(shared_name(x), shared_name(m)),
                  stream = serialize(x, NULL)))
  expect_identical(got$read, rep("refused", 3))
  for (message in c(got$mapped, got$unser)) {
    expect_match(message, "^shmr: .*(Permission denied|belongs to another user)")
  }
  expect_identical(got$listed, character())
  expect_identical(got$pruned, character())
  expect_false(got$removed)
  # All still there and intact for their owner.
  expect_identical(map_shared(shared_name(x))[], c(1.5, 2.5, 3.5))
  expect_identical(map_shared(shared_name(m))[], c(4.5, 5.5))
  expect_identical(map_shared("test_other_user")[], 7)
})

test_that("this user never maps, lists or prunes another user's region", {
  skip_unless_root_with_nobody()
  # A directory SHMR_SHM_DIR names may be closed to nobody (root's 0755).
  shm_dir <- Sys.getenv("SHMR_SHM_DIR", "/dev/shm")
  skip_if_not(as_nobody(sprintf("file.access(%s, 2) == 0", deparse(shm_dir))),
              paste("user nobody cannot create files in", shm_dir))
  # A region of nobody, left behind by a process that has exited (so it
  # looks like a dead creator's region), under a name in shmr's namespace.
  made <- as_nobody(c(
    "x <- share(c(8, 9), backing = 'shm', name = paste0('test_foreign_', Sys.getpid()), persist = FALSE)",
    "name <- shared_name(x)",
    "path <- shared_info(x)$path",
    "# Keep the region past exit, as if this process were killed.",
    "file.copy(path, paste0(path, '.keep'))",
    "list(name = name, path = path)"
  ))
  kept <- paste0(made$path, ".keep")
  on.exit(unlink(c(made$path, kept)), add = TRUE)
  expect_true(file.rename(kept, made$path))
  expect_identical(file.info(made$path)$uid, 65534L)
  # Root could read it, but shmr refuses: it is not this user's region.
  expect_error(map_shared(made$name), "belongs to another user")
  expect_false(made$name %in% shared_regions()$name)
  expect_false(made$name %in% prune_shared())
  expect_false(remove_shared(made$name))
  expect_true(file.exists(made$path))
})
