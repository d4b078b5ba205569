#include "names.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace shmr {

void throw_system_error(const std::string& what, int errnum) {
  throw Error(ErrorKind::System, what + ": " + std::strerror(errnum));
}

namespace names {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kRandomChars = 22;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

bool is_attribute_char(char c) { return is_name_char(c); }

}  // namespace

std::string generate() {
  unsigned char bytes[kRandomChars];
  size_t filled = 0;
  while (filled < sizeof bytes) {
    ssize_t got = getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_system_error("getrandom", errno);
    }
    filled += static_cast<size_t>(got);
  }
  std::string name = kPrefix;
  // 62 * 4 = 248: rejecting bytes >= 248 keeps every character uniform.
  for (unsigned char b : bytes) {
    while (b >= 248) {
      if (getrandom(&b, 1, 0) != 1) throw_system_error("getrandom", errno);
    }
    name.push_back(kAlphabet[b % 62]);
  }
  return name;
}

bool is_valid_region_name(const std::string& name) {
  const size_t prefix = std::strlen(kPrefix);
  if (name.size() <= prefix || name.size() > kMaxNameLength) return false;
  if (name.compare(0, prefix, kPrefix) != 0) return false;
  for (char c : name)
    if (!is_name_char(c)) return false;
  return true;
}

std::optional<ObjectPath> parse_path(const std::string& text) {
  if (text.size() > 4096) return std::nullopt;
  size_t end = 0;
  while (end < text.size() && is_name_char(text[end])) ++end;
  ObjectPath path;
  path.region = text.substr(0, end);
  if (!is_valid_region_name(path.region)) return std::nullopt;

  size_t i = end;
  while (i < text.size()) {
    if (text[i] == '[') {
      ++i;
      for (;;) {
        uint64_t value = 0;
        size_t digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
          if (digits == 18) return std::nullopt;
          value = value * 10 + static_cast<uint64_t>(text[i] - '0');
          ++digits;
          ++i;
        }
        if (digits == 0 || value == 0) return std::nullopt;
        path.steps.push_back({PathStep::Kind::Element, value, {}});
        if (i < text.size() && text[i] == ',') {
          ++i;
          continue;
        }
        if (i < text.size() && text[i] == ']') {
          ++i;
          break;
        }
        return std::nullopt;
      }
    } else if (text[i] == '@') {
      ++i;
      size_t start = i;
      while (i < text.size() && is_attribute_char(text[i])) ++i;
      if (i == start) return std::nullopt;
      path.steps.push_back({PathStep::Kind::Attribute, 0, text.substr(start, i - start)});
    } else {
      return std::nullopt;
    }
  }
  return path;
}

std::string format_path(const ObjectPath& path) {
  std::string out = path.region;
  bool in_brackets = false;
  for (const PathStep& step : path.steps) {
    if (step.kind == PathStep::Kind::Element) {
      if (in_brackets) {
        out.back() = ',';
      } else {
        out.push_back('[');
      }
      out += std::to_string(step.position);
      out.push_back(']');
      in_brackets = true;
    } else {
      out += "@" + step.attribute;
      in_brackets = false;
    }
  }
  return out;
}

std::string format_view_state(const ViewState& state) {
  return state.region + ":" + std::to_string(state.node);
}

std::optional<ViewState> parse_view_state(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  ViewState state;
  state.region = text.substr(0, colon);
  if (!is_valid_region_name(state.region)) return std::nullopt;
  const size_t digits = text.size() - colon - 1;
  if (digits == 0 || digits > 19) return std::nullopt;  // 19 digits always fit 64 bits
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    state.node = state.node * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  return state;
}

namespace {

// A generated name (22 base-62 characters, 131 bits) packs into 17 bytes.
constexpr size_t kPackedBytes = 17;

int alphabet_index(char c) {
  const char* at = std::strchr(kAlphabet, c);
  return c != '\0' && at != nullptr ? static_cast<int>(at - kAlphabet) : -1;
}

bool is_packable(const std::string& tail) {
  if (tail.size() != kRandomChars) return false;
  for (char c : tail)
    if (alphabet_index(c) < 0) return false;
  return true;
}

// The 22 digits as one big-endian number of 17 bytes.
std::string pack(const std::string& tail) {
  unsigned char number[kPackedBytes] = {};
  for (char c : tail) {
    unsigned carry = static_cast<unsigned>(alphabet_index(c));
    for (size_t i = kPackedBytes; i-- > 0;) {
      unsigned value = number[i] * 62u + carry;
      number[i] = static_cast<unsigned char>(value & 0xff);
      carry = value >> 8;
    }
  }
  return std::string(reinterpret_cast<const char*>(number), kPackedBytes);
}

// The 22 digits back; nullopt when the number is 62^22 or more.
std::optional<std::string> unpack(const unsigned char* bytes) {
  unsigned char number[kPackedBytes];
  std::memcpy(number, bytes, kPackedBytes);
  std::string tail(kRandomChars, '0');
  for (size_t d = kRandomChars; d-- > 0;) {
    unsigned remainder = 0;
    for (size_t i = 0; i < kPackedBytes; ++i) {
      unsigned value = remainder * 256u + number[i];
      number[i] = static_cast<unsigned char>(value / 62u);
      remainder = value % 62u;
    }
    tail[d] = kAlphabet[remainder];
  }
  for (unsigned char b : number)
    if (b != 0) return std::nullopt;
  return tail;
}

}  // namespace

std::string format_compact_state(const ViewState& state) {
  const std::string prefix = kPrefix;
  std::string tail = state.region.compare(0, prefix.size(), prefix) == 0
                         ? state.region.substr(prefix.size())
                         : state.region;
  bool packed = is_packable(tail);
  std::string out;
  uint64_t number = (state.node << 1) | (packed ? 1u : 0u);
  do {
    unsigned char byte = number & 0x7f;
    number >>= 7;
    if (number != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (number != 0);
  out += packed ? pack(tail) : tail;
  return out;
}

std::optional<ViewState> parse_compact_state(const unsigned char* bytes, size_t size) {
  uint64_t number = 0;
  size_t at = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (at == size || at == 10) return std::nullopt;
    unsigned char byte = bytes[at++];
    uint64_t part = byte & 0x7f;
    if (shift == 63 && part > 1) return std::nullopt;  // past 64 bits
    number |= part << shift;
    if ((byte & 0x80) == 0) break;
  }
  ViewState state;
  state.node = number >> 1;
  state.region = kPrefix;
  if ((number & 1) != 0) {
    if (size - at != kPackedBytes) return std::nullopt;
    auto tail = unpack(bytes + at);
    if (!tail) return std::nullopt;
    state.region += *tail;
  } else {
    state.region.append(reinterpret_cast<const char*>(bytes + at), size - at);
  }
  if (!is_valid_region_name(state.region)) return std::nullopt;
  return state;
}

}  // namespace names
}  // namespace shmr
