# Row subsetting of a shared data frame in a consumer, df[idx, ] at a million
# random rows (100,000 in quick mode): the first call on a fresh map and
# its memory growth, then warm times alternating with an ordinary copy of
# the frame made in the same consumer, so that the ratio, which the target
# (#14: within 1.1x of an ordinary data frame) is about, is taken at the
# same moment. An ordinary frame received by value in a consumer of its own
# gives the first-call baseline.
#
# The frame: 10 million rows (1 million quick) of a double, an integer, a
# double, a factor and a logical, about 280 MB.
run <- function(ctx) {
  rows <- if (ctx$quick) 1e6 else 1e7
  picks <- rows %/% 10
  set.seed(1)
  df <- data.frame(a = runif(rows), b = sample.int(1e6L, rows, TRUE), c = rnorm(rows),
                   d = factor(sample(c("north", "south", "east", "west"), rows, TRUE)),
                   e = sample(c(TRUE, FALSE, NA), rows, TRUE))
  size <- as.numeric(object.size(df))
  for (s in ctx$usable("dataframe_rows", kind = "data.frame")) {
    handle <- s$share(df)
    got <- tryCatch(
      in_consumer(measure_rows, list(name = s$name, token = s$token(handle), picks = picks,
                                     reps = ctx$reps), system = s$name),
      error = function(e) data.frame(case = "df[idx, ] time", value = NA,
                                     unit = paste("error:", conditionMessage(e)))
    )
    s$release(handle)
    rm(handle)
    invisible(gc())
    for (i in seq_len(nrow(got))) {
      ctx$record("dataframe_rows", got$case[i], s$name, size, got$value[i], got$unit[i])
    }
  }
  got <- in_consumer(measure_rows, list(name = NULL, token = df, picks = picks, reps = ctx$reps))
  for (i in seq_len(nrow(got))) {
    ctx$record("dataframe_rows", got$case[i], "ordinary", size, got$value[i], got$unit[i])
  }
}

# In a consumer: `name` NULL means `token` is the ordinary frame itself.
measure_rows <- function(name, token, picks, reps) {
  s <- if (is.null(name)) NULL else systems[[name]]
  # An ordinary copy of a column, whatever backs it (an ALTREP view or
  # not), with its attributes (levels, class) kept.
  plain_column <- function(col) {
    copy <- vector(typeof(col), length(col))
    copy[] <- col
    attributes(copy) <- attributes(col)
    copy
  }
  plain_frame <- function(d) {
    out <- lapply(d, plain_column)
    attributes(out) <- attributes(d)
    out
  }
  invisible(gc())
  before <- anonymous_bytes()
  obj <- if (is.null(s)) token else s$map(token)
  set.seed(2)
  idx <- sample.int(nrow(obj), picks)
  rows_of <- compiler::cmpfun(function(d, i) d[i, ])
  first <- seconds(function() rows_of(obj, idx))
  growth <- anonymous_bytes() - before
  out <- data.frame(case = c("df[idx, ] time", "df[idx, ] memory growth"),
                    value = c(first * 1e3, growth / 2^20), unit = c("ms", "MB"))
  plain <- if (!is.null(s)) plain_frame(obj)
  warm_reps <- min(reps, 3L)
  times <- vapply(seq_len(warm_reps), function(i) {
    c(shared = seconds(function() rows_of(obj, idx)),
      plain = if (is.null(plain)) NA else seconds(function() rows_of(plain, idx)))
  }, c(shared = 0, plain = 0))
  out <- rbind(out, data.frame(case = "df[idx, ] time, warm",
                               value = median(times["shared", ]) * 1e3, unit = "ms"))
  if (!is.null(plain)) {
    out <- rbind(out, data.frame(case = "df[idx, ] time, warm, ordinary copy alongside",
                                 value = median(times["plain", ]) * 1e3, unit = "ms"))
  }
  rm(obj, plain)
  invisible(gc())
  if (!is.null(s)) s$unmap(token, NULL)
  out
}
