#include "origin.h"

#include <cstring>
#include <sstream>
#include <vector>

#include "decimal.h"
#include "format.h"

namespace shmr {
namespace {

bool all_of(const std::string& s, const char* allowed) {
  for (char c : s)
    if (c == '\0' || std::strchr(allowed, c) == nullptr) return false;
  return true;
}

constexpr const char* kHex = "0123456789abcdef";
constexpr const char* kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr const char* kHostChars =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-_";

std::vector<std::string> split_spaces(const std::string& text) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    fields.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return fields;
}

}  // namespace

bool is_wanted_region(const RegionIdentity& found, bool found_is_replica,
                      const RegionIdentity& wanted) {
  if (found == wanted) return true;
  return !found_is_replica && found.size == wanted.size &&
         found.creator_pid == wanted.creator_pid && found.created_unix_ms == wanted.created_unix_ms;
}

std::string RegionIdentity::describe() const {
  std::ostringstream out;
  out << "host " << host << ", created by process " << creator_pid << " at " << created_unix_ms
      << " ms (" << size << " bytes)";
  return out.str();
}

bool is_valid_host_identity(const std::string& host) {
  if (host.empty() || host.size() >= format::kOriginHostSize) return false;
  size_t second = host.rfind(':');
  if (second == std::string::npos || second == 0) return false;
  size_t first = host.rfind(':', second - 1);
  if (first == std::string::npos || first == 0) return false;
  std::string name = host.substr(0, first);
  return all_of(name, kHostChars) && parse_decimal(host.substr(first + 1, second - first - 1)) &&
         parse_decimal(host.substr(second + 1));
}

bool is_valid_server_address(const std::string& address) {
  if (address.size() > 120) return false;
  std::string rest;
  if (address.rfind("tcp://", 0) == 0) {
    rest = address.substr(6);
  } else if (address.rfind("tls+tcp://", 0) == 0) {
    rest = address.substr(10);
  } else {
    return false;
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string host = rest.substr(0, colon);
  auto port = parse_decimal(rest.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) return false;
  if (host.front() == '[')
    return host.size() > 2 && host.back() == ']' &&
           all_of(host.substr(1, host.size() - 2), "0123456789abcdefABCDEF:.");
  return all_of(host, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-");
}

std::string format_origin(const RemoteOrigin& origin) {
  std::ostringstream out;
  out << origin.address << ' ' << origin.token << ' '
      << (origin.fingerprint.empty() ? "-" : origin.fingerprint) << ' ' << origin.identity.host
      << ' ' << origin.identity.size << ' ' << origin.identity.creator_pid << ' '
      << origin.identity.created_unix_ms << ' ' << (origin.writable ? 'w' : 'r');
  return out.str();
}

std::optional<RemoteOrigin> parse_origin(const std::string& text) {
  if (text.size() > 512) return std::nullopt;
  std::vector<std::string> f = split_spaces(text);
  if (f.size() != 8) return std::nullopt;
  RemoteOrigin origin;
  if (!is_valid_server_address(f[0])) return std::nullopt;
  origin.address = f[0];
  if (f[1].size() != 22 || !all_of(f[1], kBase62)) return std::nullopt;
  origin.token = f[1];
  if (f[2] != "-") {
    if (f[2].size() != 64 || !all_of(f[2], kHex)) return std::nullopt;
    origin.fingerprint = f[2];
  }
  // TLS and a fingerprint go together: a TLS origin without one could not be
  // checked, a plain one with one is malformed.
  bool tls = origin.address.rfind("tls+tcp://", 0) == 0;
  if (tls == origin.fingerprint.empty()) return std::nullopt;
  if (!is_valid_host_identity(f[3])) return std::nullopt;
  origin.identity.host = f[3];
  auto size = parse_decimal(f[4]);
  auto pid = parse_decimal(f[5]);
  auto created = parse_decimal(f[6]);
  if (!size || !pid || !created || *size == 0 || *pid == 0 || *pid > INT64_MAX ||
      *created > INT64_MAX)
    return std::nullopt;
  origin.identity.size = *size;
  origin.identity.creator_pid = static_cast<int64_t>(*pid);
  origin.identity.created_unix_ms = static_cast<int64_t>(*created);
  if (f[7] != "r" && f[7] != "w") return std::nullopt;
  origin.writable = f[7] == "w";
  return origin;
}

}  // namespace shmr
