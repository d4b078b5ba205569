// Region names and the sub-object path syntax of FORMAT.md section "Names".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shmr::names {

inline constexpr const char* kPrefix = "shmr_";
inline constexpr size_t kMaxNameLength = 200;

// "shmr_" followed by 22 base-62 characters from the kernel's random source
// (131 bits): unguessable, and unique across processes and PID reuse.
std::string generate();

// True when `name` is a region name: the prefix, then 1..195 characters of
// [A-Za-z0-9._-], not "." or "..".
bool is_valid_region_name(const std::string& name);

// One step from an object to a part of it.
struct PathStep {
  enum class Kind { Element, Attribute } kind;
  uint64_t position;      // Element: 1-based
  std::string attribute;  // Attribute: its name
};

struct ObjectPath {
  std::string region;
  std::vector<PathStep> steps;
};

// Parses "<region>", "<region>[2,3]", "<region>[2]@names", ... Returns
// nullopt for anything malformed; never throws.
std::optional<ObjectPath> parse_path(const std::string& text);

std::string format_path(const ObjectPath& path);

// What a shared vector serializes as (its ALTREP state): "<region>:<node>".
struct ViewState {
  std::string region;
  uint64_t node = 0;
};

std::string format_view_state(const ViewState& state);

// Parses a state that arrived through unserialize(), which anyone may have
// written: nullopt unless it is a valid region name, ':', and 1 to 19
// decimal digits. Never throws.
std::optional<ViewState> parse_view_state(const std::string& text);

// The compact form of a state (FORMAT.md section 4), for a raw vector: the
// node times two, plus one when the name is packed, as an unsigned LEB128
// number; then the region name without its "shmr_" prefix, packed into 17
// bytes when it is a generated one (22 base-62 characters). 18 bytes for a
// generated name and a node below 64.
std::string format_compact_state(const ViewState& state);

// Parses a compact state from untrusted bytes: nullopt unless the number
// ends within 10 bytes and fits 64 bits, a packed name is 17 bytes below
// 62^22, and the name with the prefix is a valid region name. Never throws.
std::optional<ViewState> parse_compact_state(const unsigned char* bytes, size_t size);

}  // namespace shmr::names
