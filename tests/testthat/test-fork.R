# Regions shared in forked children (parallel::mclapply()). A child ends
# with _exit(), so nothing of it can release anything: a region it sends to
# its parent becomes the parent's (creator and owner), and the rest stay
# the child's, removed by prune_shared() once the child is gone.

test_that("regions a forked child returns belong to the parent", {
  skip_on_cran()
  skip_on_os("windows")
  res <- parallel::mclapply(1:2, function(i) share(as.numeric(seq_len(1e5)) + i), mc.cores = 2)
  names <- vapply(res, shared_name, "")
  listed <- shared_regions()
  expect_identical(listed$creator_pid[match(names, listed$name)], rep(Sys.getpid(), 2))
  expect_true(all(vapply(res, function(x) shared_info(x)$owner, TRUE)))
  # Pruning keeps them, so they still travel by name.
  expect_false(any(names %in% prune_shared()))
  seen <- in_other_process(function(n) vapply(n, function(x) sum(map_shared(x)), 1), list(n = names))
  expect_identical(unname(seen), vapply(1:2, function(i) sum(as.numeric(seq_len(1e5)) + i), 1))
  # And they go with the parent's objects.
  rm(res)
  invisible(gc())
  expect_false(any(vapply(names, region_exists, TRUE)))
})

test_that("a region a forked child shares under a name of the user's is the parent's too", {
  skip_on_cran()
  skip_on_os("windows")
  # The state the child writes records the region's creator for a name of
  # the user's; it must be the parent, whom the header names once it is
  # handed over (before, the parent found "a newer region" and refused it).
  parent <- Sys.getpid()
  res <- parallel::mclapply(1:2, function(i) {
    share(as.numeric(1:10) * i, name = sprintf("forked_named_%d_%d", parent, i))
  }, mc.cores = 2)
  expect_identical(lapply(res, function(x) x[]), lapply(1:2, function(i) as.numeric(1:10) * i))
  expect_true(all(vapply(res, function(x) shared_info(x)$owner, TRUE)))
  paths <- vapply(res, function(x) shared_info(x)$path, "")
  rm(res)
  invisible(gc())
  expect_false(any(file.exists(paths)))
})

test_that("a list or data frame a forked child returns belongs to the parent", {
  skip_on_cran()
  skip_on_os("windows")
  # On R >= 4.3 a shared list is one object that travels by its region's
  # name, as a vector does; on R 4.2 its elements travel one by one.
  res <- parallel::mclapply(1:2, function(i) {
    if (i == 1) {
      share(data.frame(z = as.numeric(seq_len(1e4)) + i, w = "a"))
    } else {
      share(list(a = as.numeric(seq_len(1e4)) * i, b = "x"))
    }
  }, mc.cores = 2)
  regions <- vapply(res, function(x) sub("\\[.*$", "", shared_name(x[[1]])), "")
  listed <- shared_regions()
  expect_identical(listed$creator_pid[match(regions, listed$name)], rep(Sys.getpid(), 2))
  expect_false(any(regions %in% prune_shared()))
  expect_identical(res[[1]]$z, as.numeric(seq_len(1e4)) + 1)
  expect_identical(res[[2]]$a, as.numeric(seq_len(1e4)) * 2)
  rm(res)
  invisible(gc())
  expect_false(any(vapply(regions, region_exists, TRUE)))
})

test_that("nothing a forked child shared outlives the processes, but for prune_shared()", {
  skip_on_cran()
  skip_on_os("windows")
  # One file per child: two children appending to one file interleave
  # (cat() writes each piece on its own), which once made a blank name.
  kept <- tempfile(fileext = c("-1", "-2"))
  got <- in_other_process(function(kept) {
    res <- parallel::mclapply(1:2, function(i) {
      scratch <- share(as.numeric(seq_len(1e4)) * i) # the child's own, never sent
      writeLines(shared_name(scratch), kept[[i]])
      share(as.numeric(seq_len(1e5)) + i)
    }, mc.cores = 2)
    vapply(res, shared_name, "")
  }, list(kept = kept))
  # The parent has exited: what it received went with it.
  expect_false(any(vapply(got, region_exists, TRUE)))
  scratch <- vapply(kept, readLines, "", USE.NAMES = FALSE)
  expect_match(scratch, "^shmr_")
  # The children's own regions name them as creators: pruned once the
  # children are gone, unless a child removed its own first (mclapply()
  # ends a child still running with SIGTERM, which shmr's handler turns
  # into a cleanup). A child can outlive the parent that forked it by a
  # moment (it still exits after its result was read), so pruning is tried
  # until then.
  pruned <- character()
  deadline <- Sys.time() + 10
  repeat {
    pruned <- c(pruned, prune_shared())
    if (!any(vapply(scratch, region_exists, TRUE)) || Sys.time() > deadline) break
    Sys.sleep(0.05)
  }
  # Should a region stay, who made it and what became of that process.
  left <- shared_regions(scratch)
  states <- vapply(left$creator_pid, function(pid) {
    stat <- sprintf("/proc/%d/stat", pid)
    if (file.exists(stat)) readLines(stat, warn = FALSE)[1L] else "no such process"
  }, "")
  expect_false(any(vapply(scratch, region_exists, TRUE)),
               info = paste(left$name, left$creator_pid, left$creator_alive, states,
                            collapse = "; "))
})

test_that("a forked child still releases what it closes itself", {
  skip_on_cran()
  skip_on_os("windows")
  name <- parallel::mccollect(parallel::mcparallel({
    x <- share(as.numeric(1:1000))
    n <- shared_name(x)
    close(x)
    n
  }))[[1]]
  expect_false(region_exists(name))
})

test_that("forked children share at once without taking each other's bytes", {
  skip_on_cran()
  skip_on_os("windows")
  # A share of 256 KB or more goes through a pipe its thread keeps between
  # shares. The parent's exists before the fork; each child must make its
  # own, or one child's share would take bytes the other handed to the pipe.
  # Just over 256 KB: each share is one vmsplice() and one splice(), and
  # the children's calls may interleave between them. With one pipe for
  # all, this failed in about one run in three; the C++ test
  # FileSink.AForkedChildAndItsParentWriteAtOnceWithoutMixing fails every
  # time.
  values <- function(i) as.numeric(seq_len(2^15 + 3)) * i + 0.5
  parent <- share(values(0))
  close(parent)
  wrong <- parallel::mclapply(1:2, function(i) {
    expected <- values(i)
    bad <- 0L
    for (round in 1:2000) {
      s <- share(expected)
      if (!identical(fetch(s), expected)) bad <- bad + 1L
      close(s)
    }
    bad
  }, mc.cores = 2)
  expect_identical(unlist(wrong), c(0L, 0L))
})
