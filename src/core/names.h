// Region names and the sub-object path syntax of FORMAT.md section "Names".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
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

// True when `name` has the form generate() gives: the prefix and 22 base-62
// characters. A region of such a name is the only one that ever has it; a
// name of the user's choosing can lead to a newer region once the first is
// removed.
bool has_generated_form(const std::string& name);

// Which region of a reusable name an object was read from (FORMAT.md 4,
// the state's "made" field): its header's creator PID and creation time,
// and its file's inode number (0: unknown), which tells apart two regions
// one process made within a millisecond.
struct RegionMade {
  int64_t creator_pid = 0;
  int64_t created_unix_ms = 0;
  uint64_t inode = 0;
};
inline constexpr const char* kMadeField = "made";
// "<creator_pid>.<created_unix_ms>.<inode>", each decimal.
std::string format_made(const RegionMade& made);
// nullopt unless three numbers of 1 to 18 decimal digits (19 for the
// inode) joined by '.'. Never throws.
std::optional<RegionMade> parse_made(const std::string& value);

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
// decimal digits. Never throws. (The state of format version 1 streams.)
std::optional<ViewState> parse_view_state(const std::string& text);

// The compact state written since format version 2 (FORMAT.md 4): the
// region name without its "shmr_" prefix, then ":<node>" unless the node is
// 0, then any number of fields ";<key>=<value>" that later versions may add.
std::string format_compact_view_state(const ViewState& state);
// The same, followed by the field ";made=..." when the region's name does
// not have the generated form (RegionMade above): what objects write.
std::string format_compact_view_state(const ViewState& state, const RegionMade& made);

struct CompactViewState {
  ViewState view;
  // The fields after the first ';', as written ("" when there are none):
  // a reader refuses fields it does not know.
  std::string fields;
};

// nullopt unless the part before any ';' is a valid name without its prefix
// and, optionally, ':' and 1 to 19 decimal digits. Never throws.
std::optional<CompactViewState> parse_compact_view_state(const std::string& text);

// The fields of a compact state (CompactViewState::fields), in order, as
// (key, value): nullopt when one has no '=', a key that is empty or not of
// [a-z_], or a key seen before. Values are left for their readers to check.
// Never throws.
using CompactField = std::pair<std::string, std::string>;
std::optional<std::vector<CompactField>> parse_compact_fields(const std::string& fields);

}  // namespace shmr::names
