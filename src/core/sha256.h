// SHA-256 (FIPS 180-4), for certificate fingerprints: a worker checks the
// region server's certificate against the fingerprint its shared object
// carries before it sends the object's token.
#pragma once

#include <cstddef>
#include <string>

namespace shmr::sha256 {

// The digest of `size` bytes at `data`, as 64 lowercase hexadecimal digits.
std::string hex_digest(const void* data, size_t size);

}  // namespace shmr::sha256
