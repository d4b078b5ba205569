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

std::string format_compact_state(const ViewState& state) {
  std::string out;
  uint64_t node = state.node;
  do {
    unsigned char byte = node & 0x7f;
    node >>= 7;
    if (node != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (node != 0);
  const std::string prefix = kPrefix;
  out += state.region.compare(0, prefix.size(), prefix) == 0 ? state.region.substr(prefix.size())
                                                             : state.region;
  return out;
}

std::optional<ViewState> parse_compact_state(const unsigned char* bytes, size_t size) {
  ViewState state;
  size_t at = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (at == size || at == 10) return std::nullopt;
    unsigned char byte = bytes[at++];
    uint64_t part = byte & 0x7f;
    if (shift == 63 && part > 1) return std::nullopt;  // past 64 bits
    state.node |= part << shift;
    if ((byte & 0x80) == 0) break;
  }
  state.region = kPrefix;
  state.region.append(reinterpret_cast<const char*>(bytes + at), size - at);
  if (!is_valid_region_name(state.region)) return std::nullopt;
  return state;
}

}  // namespace names
}  // namespace shmr
