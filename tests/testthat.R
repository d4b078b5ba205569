library(testthat)
library(shmr)

test_check("shmr")
