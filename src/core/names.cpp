#include "names.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "decimal.h"
#include "error.h"

namespace shmr {

void throw_system_error(const std::string& what, int errnum) {
  throw Error(ErrorKind::System, what + ": " + std::strerror(errnum));
}

namespace names {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kRandomChars = 22;
constexpr size_t kSpareRandomBytes = 10;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

bool is_attribute_char(char c) { return is_name_char(c); }

}  // namespace

std::string generate() {
  // With spare bytes for the rejections below, one getrandom() call almost
  // always suffices (it is one of the few system calls of a small share).
  unsigned char bytes[kRandomChars + kSpareRandomBytes];
  size_t filled = 0;
  auto fill = [&bytes, &filled]() {
    filled = 0;
    while (filled < sizeof bytes) {
      ssize_t got = getrandom(bytes + filled, sizeof bytes - filled, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        throw_system_error("getrandom", errno);
      }
      filled += static_cast<size_t>(got);
    }
  };
  fill();
  size_t spare = kRandomChars;
  std::string name = kPrefix;
  // 62 * 4 = 248: rejecting bytes >= 248 keeps every character uniform.
  for (size_t i = 0; i < kRandomChars; ++i) {
    unsigned char b = bytes[i];
    while (b >= 248) {
      if (spare == sizeof bytes) {
        // Rare (ten bytes >= 248 in one call): a whole new buffer, equally
        // random, serves the characters still to come and the spares.
        fill();
        spare = kRandomChars;
      }
      b = bytes[spare++];
    }
    name.push_back(kAlphabet[b % 62]);
  }
  return name;
}

bool has_generated_form(const std::string& name) {
  const size_t prefix = std::strlen(kPrefix);
  if (name.size() != prefix + kRandomChars || name.compare(0, prefix, kPrefix) != 0) return false;
  for (size_t i = prefix; i < name.size(); ++i)
    if (std::strchr(kAlphabet, name[i]) == nullptr || name[i] == '\0') return false;
  return true;
}

std::string format_made(const RegionMade& made) {
  return std::to_string(made.creator_pid) + "." + std::to_string(made.created_unix_ms) + "." +
         std::to_string(made.inode);
}

std::optional<RegionMade> parse_made(const std::string& value) {
  const size_t first = value.find('.');
  const size_t second = first == std::string::npos ? first : value.find('.', first + 1);
  if (second == std::string::npos) return std::nullopt;
  const std::string_view text(value);
  auto pid = parse_decimal(text.substr(0, first), kMaxSignedDigits);
  auto created = parse_decimal(text.substr(first + 1, second - first - 1), kMaxSignedDigits);
  auto inode = parse_decimal(text.substr(second + 1));
  if (!pid || !created || !inode) return std::nullopt;
  return RegionMade{static_cast<int64_t>(*pid), static_cast<int64_t>(*created), *inode};
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
        const size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
        auto index = parse_decimal(std::string_view(text).substr(start, i - start), kMaxSignedDigits);
        if (!index || *index == 0) return std::nullopt;
        path.steps.push_back({PathStep::Kind::Element, *index, {}});
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
  auto node = parse_decimal(std::string_view(text).substr(colon + 1));
  if (!node) return std::nullopt;
  state.node = *node;
  return state;
}

std::string format_compact_view_state(const ViewState& state) {
  std::string out = state.region.compare(0, 5, kPrefix) == 0 ? state.region.substr(5) : state.region;
  if (state.node != 0) out += ":" + std::to_string(state.node);
  return out;
}

std::string format_compact_view_state(const ViewState& state, const RegionMade& made) {
  std::string out = format_compact_view_state(state);
  if (!has_generated_form(state.region)) out += std::string(";") + kMadeField + "=" + format_made(made);
  return out;
}

std::optional<CompactViewState> parse_compact_view_state(const std::string& text) {
  CompactViewState out;
  const size_t semicolon = text.find(';');
  if (semicolon != std::string::npos) {
    out.fields = text.substr(semicolon + 1);
    if (out.fields.empty()) return std::nullopt;
  }
  const std::string head = text.substr(0, semicolon);
  const size_t colon = head.find(':');
  out.view.region = kPrefix + head.substr(0, colon);
  if (!is_valid_region_name(out.view.region)) return std::nullopt;
  if (colon == std::string::npos) return out;
  auto parsed = parse_view_state(out.view.region + head.substr(colon));
  if (!parsed) return std::nullopt;
  out.view.node = parsed->node;
  return out;
}

std::optional<std::vector<CompactField>> parse_compact_fields(const std::string& fields) {
  std::vector<CompactField> out;
  size_t start = 0;
  while (start <= fields.size()) {
    size_t end = fields.find(';', start);
    if (end == std::string::npos) end = fields.size();
    const std::string field = fields.substr(start, end - start);
    const size_t equals = field.find('=');
    if (equals == std::string::npos || equals == 0) return std::nullopt;
    CompactField parsed{field.substr(0, equals), field.substr(equals + 1)};
    for (char c : parsed.first)
      if (!((c >= 'a' && c <= 'z') || c == '_')) return std::nullopt;
    for (const CompactField& seen : out)
      if (seen.first == parsed.first) return std::nullopt;
    out.push_back(std::move(parsed));
    start = end + 1;
  }
  return out;
}

}  // namespace names
}  // namespace shmr
