#include "object_paths.h"

#include <deque>
#include <string>
#include <unordered_map>

#include "error.h"

namespace shmr {

uint64_t resolve_object_path(const RegionReader& reader, const std::vector<names::PathStep>& steps) {
  uint64_t current = reader.root();
  for (const names::PathStep& step : steps) {
    NodeView node = reader.node(current);
    if (step.kind == names::PathStep::Kind::Element) {
      if (node.kind() != format::NodeKind::List)
        throw Error(ErrorKind::NotFound, "path step [" + std::to_string(step.position) +
                                             "] applies to an object that is not a list");
      if (step.position > node.length())
        throw Error(ErrorKind::NotFound, "path step [" + std::to_string(step.position) +
                                             "] is past the end of a list of length " +
                                             std::to_string(node.length()));
      current = node.child(step.position - 1);
    } else {
      bool found = false;
      for (uint32_t a = 0; a < node.attribute_count() && !found; ++a) {
        if (node.attribute_name(a) == step.attribute) {
          current = node.attribute_value(a);
          found = true;
        }
      }
      if (!found) throw Error(ErrorKind::NotFound, "no attribute '" + step.attribute + "' on the path");
    }
  }
  return current;
}

std::optional<std::vector<names::PathStep>> find_object_path(const RegionReader& reader,
                                                             uint64_t target) {
  struct Parent {
    uint64_t node;
    names::PathStep step;
  };
  std::unordered_map<uint64_t, Parent> parent;
  std::deque<uint64_t> queue{reader.root()};
  parent.emplace(reader.root(), Parent{reader.root(), {}});
  while (!queue.empty()) {
    uint64_t index = queue.front();
    queue.pop_front();
    if (index == target) {
      std::vector<names::PathStep> steps;
      while (index != reader.root()) {
        const Parent& p = parent.at(index);
        steps.insert(steps.begin(), p.step);
        index = p.node;
      }
      return steps;
    }
    NodeView node = reader.node(index);
    auto visit = [&](uint64_t child, names::PathStep step) {
      if (parent.emplace(child, Parent{index, std::move(step)}).second) queue.push_back(child);
    };
    if (node.kind() == format::NodeKind::List)
      for (uint64_t i = 0; i < node.length(); ++i)
        visit(node.child(i), {names::PathStep::Kind::Element, i + 1, {}});
    for (uint32_t a = 0; a < node.attribute_count(); ++a)
      visit(node.attribute_value(a), {names::PathStep::Kind::Attribute, 0, node.attribute_name(a)});
  }
  return std::nullopt;
}

}  // namespace shmr
