# Processes of two R versions using the same shared objects: a list or data
# frame shared on R >= 4.3 is one ALTREP object (class "shmr"), and R before
# 4.3 has no ALTREP lists (helper-other-r.R finds the other R).

cross_version_objects <- function() {
  list(
    df = data.frame(a = 1:2000, b = seq(0.5, 1000, by = 0.5), s = rep(c("x", "y\u00e9"), 1000),
                    f = factor(rep(c("u", "v"), 1000)), stringsAsFactors = FALSE),
    nested = list(a = list(b = as.numeric(1:5000), c = "deep"), d = 1:3, e = list())
  )
}

test_that("a list shared on R >= 4.3 reads on older R as its data, or as an unavailable list once gone", {
  other <- other_r_or_skip(newer = TRUE)
  dir <- tempfile("other-r-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  objects <- cross_version_objects()
  owner <- start_in_other_r(other, function(dir) {
    objects <- readRDS(file.path(dir, "objects.rds"))
    shared <- lapply(objects, share)
    saveRDS(shared, file.path(dir, "shared.rds"))
    writeBin(serialize(shared$df, NULL), file.path(dir, "df.bin"))
    file.create(file.path(dir, "ready"))
    while (!file.exists(file.path(dir, "done"))) Sys.sleep(0.05)
    TRUE
  }, dir)
  on.exit(owner$kill(), add = TRUE)
  saveRDS(objects, file.path(dir, "objects.rds"))
  expect_true(wait_for_file(file.path(dir, "ready"), owner, timeout = 60))

  expect_silent(got <- readRDS(file.path(dir, "shared.rds")))
  expect_identical(got, objects)
  expect_true(is_shared(got$df$b))
  expect_true(is_shared(got$nested$a$b))
  expect_silent(df <- unserialize(readBin(file.path(dir, "df.bin"), "raw", 1e6)))
  expect_identical(df, objects$df)
  expect_true(is_shared(df$a))

  file.create(file.path(dir, "done"))
  owner$wait(30000)
  # As on R >= 4.3: it loads, with a warning, keeps its length and names,
  # and an element read is the error.
  expect_warning(gone <- unserialize(readBin(file.path(dir, "df.bin"), "raw", 1e6)), "not available")
  expect_identical(names(gone), names(objects$df))
  expect_error(sum(gone$b), class = "shmr_region_unavailable")
})

test_that("an older R reads a list shared here as its data, or as an unavailable list once gone", {
  # The other direction of the test above, from this R >= 4.3: tests run on
  # the machine's older R before R 4.5's build of shmr exists.
  other <- other_r_or_skip(newer = FALSE)
  dir <- tempfile("other-r-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  objects <- cross_version_objects()
  saveRDS(objects, file.path(dir, "objects.rds"))
  shared <- lapply(objects, share)
  saveRDS(shared, file.path(dir, "shared.rds"))
  read_there <- function(dir) {
    warned <- character()
    got <- withCallingHandlers(readRDS(file.path(dir, "shared.rds")), warning = function(w) {
      warned <<- c(warned, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
    list(warned = warned, same = identical(got, readRDS(file.path(dir, "objects.rds"))),
         shared = tryCatch(c(is_shared(got$df$b), is_shared(got$nested$a$b)), error = function(e) NA),
         names = names(got$df),
         read = tryCatch(sum(got$df$b), error = function(e) class(e)))
  }
  read_in_other_r <- function() {
    reader <- start_in_other_r(other, read_there, dir)
    reader$wait(60000)
    reader$get_result()
  }
  seen <- read_in_other_r()
  # Before, R < 4.3 warned that it cannot unserialize the class and made
  # each list an empty one.
  expect_identical(seen$warned, character())
  expect_true(seen$same)
  expect_identical(seen$shared, c(TRUE, TRUE))
  for (object in shared) close(object)
  gone <- read_in_other_r()
  expect_match(gone$warned, "not available", all = FALSE)
  expect_identical(gone$names, names(objects$df))
  expect_true("shmr_region_unavailable" %in% gone$read)
})
