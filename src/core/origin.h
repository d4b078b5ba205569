// Where a shared object comes from, in remote mode: the extra part of its
// serialized state that lets a worker on another host get the region's
// bytes (inst/FORMAT.md 4, the compact state's "origin" field). Like the
// rest of a state it arrives through unserialize(), which anyone can write:
// it is parsed strictly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shmr {

// What identifies a region across hosts: the host it was created on and its
// header's size, creator and creation time. A copy on another host keeps all
// four (its header is the origin's).
struct RegionIdentity {
  std::string host;
  uint64_t size = 0;
  int64_t creator_pid = 0;
  int64_t created_unix_ms = 0;

  bool operator==(const RegionIdentity& other) const {
    return host == other.host && size == other.size && creator_pid == other.creator_pid &&
           created_unix_ms == other.created_unix_ms;
  }
  // "<host>, created by process <pid> at <ms> (<size> bytes)", for messages.
  std::string describe() const;
};

// Whether a region of this host, whose identity is `found` (a replica's
// names its origin's host), is the region `wanted` names: equal identities;
// or, for a region that is not a replica, equal but for the host name. That
// is the origin itself seen under another host name, from a container that
// shares its host's shm directory (--ipc=host): name, creator, creation time
// and size all agree, which no other region's would.
bool is_wanted_region(const RegionIdentity& found, bool found_is_replica,
                      const RegionIdentity& wanted);

struct RemoteOrigin {
  std::string address;      // the region server: "tcp://<ip>:<port>" or "tls+tcp://..."
  std::string token;        // 22 base-62 characters, per region
  std::string fingerprint;  // SHA-256 of the server's certificate (64 hex), "" without TLS
  RegionIdentity identity;
  bool writable = false;
};

// "<address> <token> <fingerprint or -> <host> <size> <pid> <created ms> <r|w>"
std::string format_origin(const RemoteOrigin& origin);

// nullopt unless every field is well formed; never throws.
std::optional<RemoteOrigin> parse_origin(const std::string& text);

// True for a host identity "<host name>:<major>:<minor>" (FORMAT.md).
bool is_valid_host_identity(const std::string& host);

// True for "tcp://<host>:<port>" or "tls+tcp://<host>:<port>", the host an
// IPv4 address, a DNS name or a bracketed IPv6 address.
bool is_valid_server_address(const std::string& address);

}  // namespace shmr
