# A corrupted or truncated region gives a clear R error, never a crash. The
# corrupted copies are made in a private directory (SHMR_SHM_DIR) in another
# process, so nothing here touches real regions.

corrupt_and_map <- function(mutate) {
  in_other_process(function(mutate) {
    dir <- tempfile("shm")
    dir.create(dir, mode = "0700")
    Sys.setenv(SHMR_SHM_DIR = dir)
    x <- share(list(a = c(1.5, 2.5, 3.5), b = c("x", "yy", NA)))
    name <- shared_name(x)
    path <- file.path(dir, name)
    bytes <- readBin(path, "raw", file.size(path))
    target <- file.path(dir, "shmr_corrupted")
    writeBin(mutate(bytes), target)
    Sys.chmod(target, "0600")
    out <- tryCatch({
      y <- map_shared("shmr_corrupted")
      list(ok = TRUE, value = fetch(y))
    }, error = function(e) list(ok = FALSE, message = conditionMessage(e)))
    out
  }, list(mutate = mutate))
}

u64 <- function(bytes, offset) {
  sum(as.numeric(bytes[offset + 1:8]) * 256^(0:7))
}

put_u64 <- function(bytes, offset, value) {
  bytes[offset + 1:8] <- as.raw(floor(value / 256^(0:7)) %% 256)
  bytes
}

test_that("truncated regions are rejected", {
  got <- corrupt_and_map(function(b) b[1:(length(b) - 64)])
  expect_false(got$ok)
  expect_match(got$message, "corrupt.*truncated")
  got <- corrupt_and_map(function(b) b[1:40])
  expect_false(got$ok)
  expect_match(got$message, "corrupt")
})

test_that("bad magic, version and sizes are rejected", {
  expect_match(corrupt_and_map(function(b) { b[2] <- as.raw(0); b })$message, "magic")
  expect_match(corrupt_and_map(function(b) { b[9] <- as.raw(99); b })$message, "format version is 99")
  expect_match(corrupt_and_map(function(b) put_u64(b, 56, 1e12))$message, "corrupt")
  expect_match(corrupt_and_map(function(b) put_u64(b, 72, 1e6))$message, "root node")
})

test_that("node fields pointing outside the region are rejected", {
  node_offset <- function(b, i) u64(b, 64) + 64 * i
  # data_offset of node 0 far past the end
  got <- corrupt_and_map(function(b) put_u64(b, node_offset(b, 0) + 16, 2^40))
  expect_false(got$ok)
  expect_match(got$message, "corrupt")
  # huge length whose byte size overflows
  got <- corrupt_and_map(function(b) put_u64(b, node_offset(b, 0) + 8, 2^62))
  expect_false(got$ok)
  expect_match(got$message, "corrupt")
  # unknown node kind
  got <- corrupt_and_map(function(b) { b[node_offset(b, 0) + 1] <- as.raw(77); b })
  expect_match(got$message, "unknown kind")
})

test_that("bad string offsets are an error when the element is read", {
  got <- corrupt_and_map(function(b) {
    # Find the String node and make its first end offset point past its bytes.
    table <- u64(b, 64)
    count <- u64(b, 56)
    for (i in seq_len(count) - 1) {
      at <- table + 64 * i
      if (b[at + 1] == as.raw(6)) {
        index <- u64(b, at + 32)
        return(put_u64(b, index, 1e9))
      }
    }
    stop("no string node")
  })
  expect_false(got$ok)
  expect_match(got$message, "outside its bytes")
})

test_that("a list that refers to itself is rejected", {
  got <- corrupt_and_map(function(b) {
    table <- u64(b, 64)
    root <- u64(b, 72)
    at <- table + 64 * root
    children <- u64(b, at + 16)
    put_u64(b, children, root)
  })
  expect_false(got$ok)
  expect_match(got$message, "invalid element node")
})

test_that("garbage is rejected", {
  set.seed(1)
  got <- corrupt_and_map(function(b) as.raw(sample(0:255, length(b), TRUE)))
  expect_false(got$ok)
  expect_match(got$message, "corrupt")
})
