# The machine's limits, from bench/physical_limit.cpp: memcpy into freshly
# created shared pages (what share() cannot beat), into touched memory, and
# sequential reads.
run <- function(ctx) {
  binary <- file.path("build", "physical_limit")
  dir.create("build", showWarnings = FALSE)
  status <- system2("g++", c("-O2", "-std=c++17", "-o", binary, "bench/physical_limit.cpp"))
  if (status != 0) stop("could not build bench/physical_limit.cpp")
  for (size in ctx$sizes) {
    out <- system2(binary, c(format(size, scientific = FALSE), ctx$reps), stdout = TRUE)
    table <- utils::read.csv(text = out, stringsAsFactors = FALSE)
    for (i in seq_len(nrow(table))) {
      ctx$record(table$metric[i], table$case[i], "physical_limit", table$size_bytes[i],
                 table$value[i], table$unit[i])
    }
  }
}
