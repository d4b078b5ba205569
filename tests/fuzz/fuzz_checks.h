// The checks behind the fuzz targets (tests/fuzz/fuzz_*.cpp), also run by
// the GoogleTest suite over the committed corpus (tests/cpp/test_fuzz_corpus.cpp).
// Each feeds untrusted bytes to one parser of the engine, uses everything the
// parser accepts the way shmr would, and returns a description of the first
// broken promise, or "" when the engine behaved: it either rejected the bytes
// with shmr::Error or accepted them and every accepted offset, length and
// reference was in bounds. Out-of-bounds reads are left to AddressSanitizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shmr_fuzz {

// The bytes as a region file: RegionReader, every node, element, string and
// attribute, and object paths (map_shared("name[i,j]@attr"), shared_name()).
std::string check_region(const uint8_t* data, size_t size);

// The bytes as a locator file of a file-backed region.
std::string check_locator(const uint8_t* data, size_t size);

// The bytes as text given to map_shared() or found in a serialized shared
// object: object paths, region names and view states.
std::string check_names(const uint8_t* data, size_t size);

}  // namespace shmr_fuzz
