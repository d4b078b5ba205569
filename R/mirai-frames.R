# mirai tells a daemon nothing about its caller, and tells shmr nothing about
# the call in progress; some of it is in the arguments of mirai's own
# functions on the call stack (the profile a mirai_map() sends to, the URL a
# daemon dialed, whether mirai is writing an error report). Each lookup falls
# back to shmr's earlier behaviour when mirai changes those functions.

# The innermost frame on the call stack for which `test(frame, i)` is TRUE
# (`i` its number, for sys.function(i)); NULL when there is none.
innermost_frame <- function(test) {
  frames <- sys.frames()
  for (i in rev(seq_along(frames))) {
    if (test(frames[[i]], i)) return(frames[[i]])
  }
  NULL
}
