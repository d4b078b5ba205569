// Unsigned decimal numbers as names, states and origins write them: ASCII
// digits only, no sign, no spaces. Every parser of those formats reads its
// numbers here, so they all refuse the same malformed input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace shmr {

// 19 digits always fit an unsigned 64-bit number, 18 a signed one.
constexpr size_t kMaxUnsignedDigits = 19;
constexpr size_t kMaxSignedDigits = 18;

// The value of 1 to `most_digits` (at most 19) decimal digits; nullopt for
// an empty string, any other character or too many digits.
inline std::optional<uint64_t> parse_decimal(std::string_view digits,
                                             size_t most_digits = kMaxUnsignedDigits) noexcept {
  if (digits.empty() || digits.size() > most_digits || digits.size() > kMaxUnsignedDigits) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

}  // namespace shmr
