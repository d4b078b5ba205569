#include "stream_namespaces.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace shmr {

namespace {

// R's serialize.c: the item type of a namespace reference, and that of a
// string's characters, in the low byte of an item's flags.
constexpr uint32_t kNamespaceItem = 249;
constexpr uint32_t kCharsItem = 9;
// Flag bits a CHARSXP may carry besides its encoding levels: none (no
// attributes, tag or object bit).
constexpr uint32_t kCharsForbiddenBits = 0x0700u;
// A package name is at most a few dozen characters; R's limit on symbols.
constexpr uint32_t kLongestName = 10000;
// A namespace's spec is c(name, version): a few strings at most.
constexpr uint32_t kMostSpecStrings = 16;

uint32_t big_endian(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Writing R Extensions 1.1.1: ASCII letters, digits and dots, starting
// with a letter, not ending in a dot, at least two characters. Older
// packages may differ slightly, so only the characters are held to it.
bool looks_like_package_name(const std::string& name) {
  if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_';
  });
}

// The name of the namespace reference at `at`, or "" when the bytes there
// are not one: flags 249, then the spec as a string vector (a zero, its
// length, then each string as a CHARSXP item: flags, byte count, bytes).
std::string namespace_at(const uint8_t* data, size_t size, size_t at) {
  if (size - at < 20) return "";
  const uint8_t* p = data + at;
  if (big_endian(p) != kNamespaceItem || big_endian(p + 4) != 0) return "";
  uint32_t strings = big_endian(p + 8);
  if (strings == 0 || strings > kMostSpecStrings) return "";
  uint32_t chars_flags = big_endian(p + 12);
  if ((chars_flags & 0xFFu) != kCharsItem || (chars_flags & kCharsForbiddenBits) != 0) return "";
  uint32_t length = big_endian(p + 16);
  if (length == 0 || length > kLongestName || length > size - at - 20) return "";
  std::string name(reinterpret_cast<const char*>(p + 20), length);
  return looks_like_package_name(name) ? name : "";
}

}  // namespace

std::vector<std::string> namespaces_in_stream(const uint8_t* data, size_t size, bool& recognized) {
  std::vector<std::string> names;
  // "X\n" then the version (2 or 3), as 4-byte big-endian integers.
  recognized = size >= 6 && data[0] == 'X' && data[1] == '\n' &&
               (big_endian(data + 2) == 2 || big_endian(data + 2) == 3);
  if (!recognized) return names;
  // Items are not aligned (strings have any length): every place where the
  // flags' last byte, 249, is found is tried, memchr() finding them.
  const uint8_t* end = data + size;
  for (const uint8_t* p = data + 5; p < end;) {
    const void* found = std::memchr(p, static_cast<int>(kNamespaceItem), static_cast<size_t>(end - p));
    if (found == nullptr) break;
    const size_t at = static_cast<size_t>(static_cast<const uint8_t*>(found) - data) - 3;
    std::string name = namespace_at(data, size, at);
    if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(std::move(name));
    p = static_cast<const uint8_t*>(found) + 1;
  }
  return names;
}

}  // namespace shmr
