#include "fuzz_checks.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "error.h"
#include "locator.h"
#include "names.h"
#include "object_paths.h"
#include "reader.h"

namespace shmr_fuzz {
namespace {

using shmr::format::NodeKind;

// A copy of the input at an address aligned like a mapping (the reader's
// alignment checks are relative to the start of the region), exactly `size`
// bytes long so AddressSanitizer sees any read past the end.
class AlignedCopy {
 public:
  AlignedCopy(const uint8_t* data, size_t size) : size_(size) {
    void* p = nullptr;
    if (::posix_memalign(&p, 64, size == 0 ? 1 : size) != 0) std::abort();
    bytes_.reset(static_cast<unsigned char*>(p));
    if (size > 0) std::memcpy(bytes_.get(), data, size);
  }
  const unsigned char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char, Free> bytes_;
  size_t size_;
};

// Reads every byte, so an out-of-range pointer is noticed by the sanitizer.
unsigned touch(const void* p, uint64_t n) {
  const volatile unsigned char* bytes = static_cast<const unsigned char*>(p);
  unsigned sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += bytes[i];
  return sum;
}

bool inside(const unsigned char* base, uint64_t size, const void* p, uint64_t n) {
  auto at = static_cast<const unsigned char*>(p);
  return at >= base && static_cast<uint64_t>(at - base) <= size &&
         n <= size - static_cast<uint64_t>(at - base);
}

// Runs `body`; a shmr::Error is the engine refusing bad bytes, anything
// else is a broken promise.
template <typename Body>
bool run(std::string& problem, Body&& body) {
  try {
    body();
    return true;
  } catch (const shmr::Error&) {
    return false;
  } catch (const std::exception& e) {
    if (problem.empty()) problem = std::string("unexpected exception: ") + e.what();
  } catch (...) {
    if (problem.empty()) problem = "unexpected non-standard exception";
  }
  return false;
}

void check_node(const shmr::RegionReader& reader, uint64_t index, const unsigned char* base,
                uint64_t size, std::string& problem) {
  shmr::NodeView node;
  if (!run(problem, [&] { node = reader.node(index); })) return;
  const std::string where = "node " + std::to_string(index) + ": ";
  if (static_cast<uint32_t>(node.kind()) > shmr::format::kMaxNodeKind) {
    problem = where + "accepted an unknown kind";
    return;
  }
  if (node.kind() != NodeKind::Null) {
    if (!inside(base, size, node.data(), node.data_size())) {
      problem = where + "data outside the region";
      return;
    }
    touch(node.data(), node.data_size());
  }
  const uint64_t width = shmr::format::element_size(node.kind());
  if (width != 0) {
    if (node.data_size() / width != node.length() || node.data_size() % width != 0) {
      problem = where + "vector size does not match its length";
      return;
    }
    const uint64_t align = width > 8 ? 8 : width;
    if (reinterpret_cast<uintptr_t>(node.data()) % align != 0) {
      problem = where + "misaligned vector data accepted";
      return;
    }
  }
  if (node.kind() == NodeKind::List) {
    for (uint64_t i = 0; i < node.length(); ++i) {
      uint64_t child = 0;
      if (run(problem, [&] { child = node.child(i); }) && child >= index) {
        problem = where + "list element refers forward";
        return;
      }
    }
  }
  if (node.kind() == NodeKind::String) {
    const auto* bytes = static_cast<const unsigned char*>(node.data());
    for (uint64_t i = 0; i < node.length(); ++i) {
      shmr::StringRef s{nullptr, 0, shmr::format::StringEncoding::Missing};
      if (!run(problem, [&] { s = node.string_at(i); })) continue;
      if (s.encoding == shmr::format::StringEncoding::Missing) continue;
      // A dictionary-coded node's strings are its dictionary's (checked as
      // a node of its own): they need only lie inside the region.
      const bool in_bounds = node.is_dictionary() ? inside(base, size, s.data, s.size)
                                                  : inside(bytes, node.data_size(), s.data, s.size);
      if (!in_bounds) {
        problem = where + "string element outside its bytes";
        return;
      }
      if (std::memchr(s.data, '\0', s.size) != nullptr) {
        problem = where + "string element with a NUL byte accepted";
        return;
      }
      touch(s.data, s.size);
    }
  }
  for (uint32_t a = 0; a < node.attribute_count(); ++a) {
    std::string name;
    if (run(problem, [&] { name = node.attribute_name(a); }) &&
        (name.empty() || name.size() > shmr::format::kMaxAttributeNameLength)) {
      problem = where + "attribute name of a bad length accepted";
      return;
    }
    uint64_t value = 0;
    if (run(problem, [&] { value = node.attribute_value(a); }) && value >= index) {
      problem = where + "attribute refers forward";
      return;
    }
  }
}

// map_shared("<name>[i,...]@attr") and shared_name() on the region.
void check_paths(const shmr::RegionReader& reader, const uint8_t* data, size_t size,
                 std::string& problem) {
  // A few paths drawn from the input's last bytes.
  std::vector<shmr::names::PathStep> steps;
  for (size_t i = 0; i < 4 && i < size; ++i) {
    uint8_t b = data[size - 1 - i];
    if (b & 0x80)
      steps.push_back({shmr::names::PathStep::Kind::Attribute, 0, b & 0x40 ? "names" : "dim"});
    else
      steps.push_back({shmr::names::PathStep::Kind::Element, static_cast<uint64_t>(b % 8) + 1, {}});
    uint64_t found = 0;
    if (run(problem, [&] { found = shmr::resolve_object_path(reader, steps); }) &&
        found >= reader.node_count()) {
      problem = "object path resolved to a node that does not exist";
      return;
    }
  }
  const uint64_t count = reader.node_count();
  for (uint64_t target : {uint64_t{0}, count / 2, count - 1}) {
    std::optional<std::vector<shmr::names::PathStep>> path;
    if (!run(problem, [&] { path = shmr::find_object_path(reader, target); }) || !path) continue;
    uint64_t back = 0;
    if (run(problem, [&] { back = shmr::resolve_object_path(reader, *path); }) &&
        back >= count) {
      problem = "shared_name() gave a path to a node that does not exist";
      return;
    }
  }
}

}  // namespace

std::string check_region(const uint8_t* data, size_t size) {
  AlignedCopy copy(data, size);
  std::string problem;
  std::unique_ptr<shmr::RegionReader> reader;
  if (!run(problem, [&] { reader = std::make_unique<shmr::RegionReader>(copy.data(), size, "fuzz"); }))
    return problem;
  const auto& header = reader->header();
  if (header.total_size != size || header.node_count == 0 || header.root_node >= header.node_count)
    return "accepted a header that does not describe the region";
  // Node records are 64 bytes, so a valid count is at most size / 64.
  for (uint64_t i = 0; i < header.node_count && problem.empty(); ++i)
    check_node(*reader, i, copy.data(), size, problem);
  if (problem.empty()) check_paths(*reader, data, size, problem);
  return problem;
}

std::string check_locator(const uint8_t* data, size_t size) {
  AlignedCopy copy(data, size);
  std::string problem;
  // The region name: the last path component when it is a valid name (so
  // the fuzzer can reach acceptance), else a fixed one.
  std::string name = "shmr_fuzz";
  const size_t header = sizeof(shmr::LocatorHeader);
  if (size > header) {
    std::string tail(reinterpret_cast<const char*>(copy.data()) + header, size - header);
    size_t slash = tail.rfind('/');
    std::string last = slash == std::string::npos ? tail : tail.substr(slash + 1);
    if (shmr::names::is_valid_region_name(last)) name = last;
  }
  shmr::Locator locator;
  bool is_locator = false;
  if (!run(problem, [&] { is_locator = shmr::parse_locator(copy.data(), size, name, locator); }) ||
      !is_locator)
    return problem;
  const std::string& path = locator.target_path;
  if (path.empty() || path[0] != '/' || path.size() > shmr::kMaxLocatorPath ||
      path.find('\0') != std::string::npos || path.size() <= name.size() ||
      path.compare(path.size() - name.size() - 1, std::string::npos, "/" + name) != 0)
    return "accepted a locator that leads to another file: " + path;
  // What was accepted is written back the same way.
  std::vector<char> again = shmr::encode_locator(locator);
  shmr::Locator reread;
  if (!shmr::parse_locator(reinterpret_cast<const unsigned char*>(again.data()), again.size(), name,
                           reread) ||
      reread.target_path != path || reread.flags != locator.flags ||
      reread.creator.pid != locator.creator.pid)
    return "a locator does not survive encoding what was parsed";
  return problem;
}

std::string check_names(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A valid name is one file name in the shm directory: no separator, no
  // NUL, not "." or "..", always with the prefix.
  auto safe_file_name = [](const std::string& name) {
    return name.rfind(shmr::names::kPrefix, 0) == 0 && name.size() <= shmr::names::kMaxNameLength &&
           name.find('/') == std::string::npos && name.find('\0') == std::string::npos &&
           name != "." && name != "..";
  };
  if (shmr::names::is_valid_region_name(text) && !safe_file_name(text))
    return "a region name that is not one plain file name: " + text;

  if (auto path = shmr::names::parse_path(text)) {
    if (!safe_file_name(path->region)) return "an object path outside the namespace: " + text;
    for (const auto& step : path->steps)
      if (step.kind == shmr::names::PathStep::Kind::Element && step.position == 0)
        return "an object path with element 0: " + text;
    auto again = shmr::names::parse_path(shmr::names::format_path(*path));
    if (!again || again->region != path->region || again->steps.size() != path->steps.size())
      return "an object path does not survive formatting: " + text;
  }

  if (auto state = shmr::names::parse_view_state(text)) {
    if (!safe_file_name(state->region)) return "a view state outside the namespace: " + text;
    auto again = shmr::names::parse_view_state(shmr::names::format_view_state(*state));
    if (!again || again->region != state->region || again->node != state->node)
      return "a view state does not survive formatting: " + text;
  }
  return "";
}

}  // namespace shmr_fuzz
