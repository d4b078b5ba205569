# One process letting go of its mapping of a region, for code built on
# shmr's objects (the memshare and bettermc layers): the package's API for
# what close() does not cover. Entry points in src/api_compat.cpp.

# Unmaps the region `x` reads, in this process only. Unlike close(), the
# region itself is left alone even in the process that created it, so
# other mappings (and other processes) keep it. FALSE when `x` is not
# shared.
unmap_shared <- function(x) .Call(shmr_unmap, x)

# Detaches the mapping `x` reads from its region's name, typically because
# the name was removed: its views then serialize by value. FALSE when `x`
# is not shared.
detach_shared <- function(x) .Call(shmr_detach, x)

# madvise() over this process's mapping of the region `x` reads; TRUE when
# the kernel took the advice ("dontneed" is refused, FALSE, for a
# copy-on-write mapping: it would drop pages this process wrote).
advise_shared <- function(x, advice) .Call(shmr_advise, x, advice)
