// Which pages of a private file mapping this process has copied on write.
#pragma once

#include <cstdint>

namespace shmr::pages {

// True when any page overlapping [data, data + size) is a private anonymous
// copy rather than the file's page, i.e. the process wrote to it. When the
// kernel does not say (no /proc/self/pagemap), answers true: callers then
// fall back to treating the data as modified, which is always safe.
bool has_private_copies(const void* data, uint64_t size) noexcept;

}  // namespace shmr::pages
