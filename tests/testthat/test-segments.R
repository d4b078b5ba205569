test_that("a segment is written in one process and read in another", {
  seg <- segment_create(1024)
  info <- segment_info(seg)
  expect_identical(info$size, 1024)
  expect_true(info$owner)
  expect_identical(segment_read(seg, 0, 4), as.raw(c(0, 0, 0, 0)))
  expect_identical(segment_write(seg, c(1.25, -2), offset = 8), 16)
  segment_write(seg, 7:9, offset = 100)
  segment_write(seg, c(TRUE, NA), offset = 200)
  got <- in_other_process(function(name) {
    s <- segment_open(name)
    out <- list(
      doubles = readBin(segment_read(s, 8, 16), "double", n = 2),
      ints = readBin(segment_read(s, 100, 12), "integer", n = 3),
      lgl = readBin(segment_read(s, 200, 8), "integer", n = 2),
      readonly = tryCatch(segment_write(s, as.raw(1)), error = conditionMessage)
    )
    w <- segment_open(name, readonly = FALSE)
    segment_write(w, as.raw(0xAB), offset = 1023)
    segment_close(w)
    out
  }, list(name = info$name))
  expect_identical(got$doubles, c(1.25, -2))
  expect_identical(got$ints, 7:9)
  expect_identical(got$lgl, c(1L, NA_integer_))
  expect_match(got$readonly, "opened read-only")
  expect_identical(segment_read(seg, 1023), as.raw(0xAB))
  expect_true(region_exists(info$name))
  segment_close(seg)
  expect_false(region_exists(info$name))
})

test_that("out-of-range offsets, protected and closed segments are clear errors", {
  expect_error(segment_create(2^62), "size must be at most 2\\^53 bytes")
  expect_error(segment_create(0.5), "whole number of bytes >= 1")
  seg <- segment_create(16, backing = "shm")
  expect_error(segment_write(seg, as.raw(1:4), offset = 13), "outside the segment of 16 bytes")
  expect_error(segment_write(seg, 1, offset = -1), "offset must be")
  expect_error(segment_write(seg, 1, offset = 2^70), "outside the segment")
  # In full: "%g" wrote 2^53 as 9.0072e+15.
  expect_error(segment_write(seg, as.raw(1), offset = 2^53), "at offset 9007199254740992 is outside",
               fixed = TRUE)
  expect_error(segment_read(seg, 10, 7), "a read of 7 bytes at offset 10 is outside")
  expect_error(segment_write(seg, as.raw(1), Inf), "a write of 1 bytes at offset Inf is outside")
  expect_error(segment_write(seg, as.raw(1), offset = c(1, 2)), "`offset` must be a single")
  expect_error(segment_read(seg, "1"), "`offset` must be a single")
  expect_error(segment_read(seg, 0, c(1, 2)), "`size` must be a single")
  # A fractional size is refused as a fractional offset is; before, 1.5
  # read 1 byte and 2.999 read 2.
  segment_write(seg, as.raw(1:16))
  for (size in c(1.5, 2.999, -1, NA)) {
    expect_error(segment_read(seg, 0, size), "size must be a whole number of bytes >= 0",
                 info = format(size))
  }
  expect_error(segment_read(seg, 1.5, 1), "offset must be a whole number")
  expect_error(segment_write(seg, as.raw(1), offset = 0.5), "offset must be a whole number")
  expect_identical(segment_read(seg, 0, 2), as.raw(1:2))
  segment_write(seg, raw(16))
  expect_error(segment_read(seg, 17), "outside the segment")
  expect_error(segment_write(seg, "text"), "raw, logical, integer or double")
  expect_identical(segment_read(seg, 16), raw(0))
  segment_protect(seg)
  expect_true(segment_info(seg)$protected)
  expect_error(segment_write(seg, as.raw(1)), "protected")
  expect_identical(segment_read(seg, 0, 2), as.raw(c(0, 0)))
  segment_close(seg)
  expect_error(segment_read(seg), "closed")
  expect_error(segment_write(seg, as.raw(1)), "closed")
  expect_true(segment_info(seg)$closed)
  expect_error(segment_read(1:3), "not a segment")
  expect_error(segment_create(0), "size must be")
  expect_error(segment_create(-5), "size must be")
  expect_error(segment_open("shmr_noSuchSegment"), "no shared region")
})

test_that("a segment handle from another process says so, and what to open", {
  seg <- segment_create(16)
  on.exit(segment_close(seg))
  # What a worker receives when FUN captures a handle; it said "the segment
  # was closed", which the caller never did.
  moved <- unserialize(serialize(seg, NULL))
  expected <- sprintf("comes from another R process.*segment_open\\(\"%s\"\\)",
                      segment_info(seg)$name)
  expect_error(segment_read(moved), expected)
  expect_error(segment_info(moved), expected)
  expect_output(print(moved), "from another process")
  expect_length(segment_read(seg, 0, 4), 4L)
  segment_close(seg)
  expect_error(segment_read(seg), "the segment was closed")
})

test_that("segment_close(unlink = ) decides who removes a segment", {
  seg <- segment_create(8, name = "test_segment_keep")
  segment_close(seg, unlink = FALSE)
  expect_true(region_exists("shmr_test_segment_keep"))
  other <- segment_open("test_segment_keep", readonly = FALSE)
  segment_close(other)
  expect_true(region_exists("shmr_test_segment_keep"))
  other <- segment_open("test_segment_keep")
  segment_close(other, unlink = TRUE)
  expect_false(region_exists("shmr_test_segment_keep"))
})

test_that("a file-backed segment and map_shared() of a segment", {
  seg <- segment_create(32, backing = "mmap")
  expect_identical(segment_info(seg)$backing, "mmap")
  segment_write(seg, as.raw(5:1))
  bytes <- map_shared(segment_info(seg)$name)
  expect_identical(bytes[1:5], as.raw(5:1))
  expect_identical(length(bytes), 32L)
  segment_close(seg)
})

test_that("segment_open() of a path in another directory is an error, as for share_open()", {
  for (backing in c("shm", "mmap")) {
    seg <- segment_create(16, backing = backing)
    segment_write(seg, as.raw(1:4))
    file <- segment_path(seg)
    elsewhere <- file.path(tempfile("not_here"), basename(file))
    # Before, the directory was dropped and the segment opened anyway.
    expect_error(segment_open(elsewhere), "is not the file of segment", info = backing)
    long <- file.path(paste0("/", strrep("d", 3000)), basename(file))
    err <- tryCatch(segment_open(long), error = conditionMessage)
    expect_match(err, "is not the file of segment", info = backing)
    expect_lt(nchar(err), 400)
    # Its own file and its name still open it.
    other <- segment_open(file)
    expect_identical(segment_read(other, 0, 4), as.raw(1:4), info = backing)
    segment_close(other)
    by_name <- segment_open(segment_info(seg)$name)
    expect_identical(segment_read(by_name, 0, 4), as.raw(1:4), info = backing)
    segment_close(by_name)
    segment_close(seg)
  }
})

test_that("segments and segment reports print under options(OutDec = \",\") and warn = 2", {
  seg <- segment_create(1234567)
  on.exit(segment_close(seg), add = TRUE)
  expect_output(print(seg), "1,234,567 bytes")
  # R warns of a thousands mark that is also the decimal mark: printing
  # failed under warn = 2, and gave "1,234,567" where "," marks decimals.
  withr::local_options(list(OutDec = ",", warn = 2))
  expect_output(print(seg), "1.234.567 bytes", fixed = TRUE)
  expect_output(print(segment_report()), "regions of this process, [0-9.]+ bytes")
})
