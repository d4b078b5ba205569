# PNG plots of the results, with base graphics.

make_plots <- function(results, out_dir) {
  if (!capabilities("png")) {
    message("[bench] no PNG device here; plots skipped")
    return(invisible())
  }
  type <- if (capabilities("cairo")) "cairo" else "Xlib"
  # `extra`: more rows to draw as lines of their own (a limit, say).
  by_size <- function(metric, case, file, ylab, log = "x", extra = NULL, where = "topleft") {
    d <- results[results$metric == metric & results$case == case & !is.na(results$value) &
                   !is.na(results$size_bytes), ]
    d <- rbind(d, extra)
    if (!nrow(d)) return(invisible())
    png(file.path(out_dir, file), width = 900, height = 600, type = type)
    on.exit(dev.off())
    systems <- unique(d$system)
    colours <- seq_along(systems)
    # A log y axis has no zero.
    ylim <- if (grepl("y", log)) range(d$value) else range(d$value, 0)
    plot(NA, xlim = range(d$size_bytes / 2^20), ylim = ylim, log = log,
         xlab = "size (MB)", ylab = ylab, main = paste(metric, "-", case))
    for (k in seq_along(systems)) {
      s <- d[d$system == systems[k], ]
      s <- s[order(s$size_bytes), ]
      lines(s$size_bytes / 2^20, s$value, type = "b", col = colours[k], pch = 19)
    }
    legend(where, legend = systems, col = colours, pch = 19, bty = "n")
  }
  # The physical limits: the fastest way one thread copies into fresh shm
  # pages through a mapping, and the kernel's copy by vmsplice() + splice()
  # (physical_limit.cpp).
  fastest <- function(metric, cases, label) {
    d <- results[results$metric == metric & results$case %in% cases & results$unit == "GB/s", ]
    best <- do.call(rbind, lapply(split(d, d$size_bytes), function(x) x[which.max(x$value), ]))
    if (!is.null(best)) best$system <- label
    best
  }
  limit <- rbind(fastest("memcpy_fresh_shm", c("ftruncate", "fallocate", "fallocate_populate"),
                         "memcpy into fresh shm, one thread (limit)"),
                 fastest("write_fresh_shm", "vmsplice", "vmsplice + splice into fresh shm (limit)"))
  by_size("share_throughput", "double vector", "share_throughput.png", "GB/s", extra = limit,
          where = "bottomright")
  # Log scale: bettermc's map takes a thousand times the others'.
  by_size("map_time", "double vector", "map_time.png", "microseconds (log scale)", log = "xy",
          where = "right")
  bars <- function(metric, case, file, ylab) {
    d <- results[results$metric == metric & results$case == case & !is.na(results$value), ]
    if (!nrow(d)) return(invisible())
    png(file.path(out_dir, file), width = 900, height = 600, type = type)
    on.exit(dev.off())
    par(mar = c(5, 14, 4, 2))
    barplot(d$value, names.arg = d$system, horiz = TRUE, las = 1, xlab = ylab,
            main = paste(metric, "-", case))
  }
  bars("parallel_colmeans", "time", "parallel_colmeans_time.png", "seconds")
  bars("parallel_colmeans", "private memory growth per worker", "parallel_colmeans_memory.png", "MB")
  bars("dataframe_workers", "time", "dataframe_workers_time.png", "seconds")
  bars("dataframe_workers", "private memory growth per worker", "dataframe_workers_memory.png", "MB")
  invisible()
}

# Rscript bench/plots.R CSV OUT_DIR: plots from a results file (for example
# one written by an R built without a PNG device).
if (sys.nframe() == 0L) {
  args <- commandArgs(trailingOnly = TRUE)
  make_plots(utils::read.csv(args[1], stringsAsFactors = FALSE), args[2])
}
