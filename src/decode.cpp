#include "decode.h"

#include <cpp11/protect.hpp>
#include <cpp11/sexp.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "list_registry.h"
#include "r_types.h"
#include "view.h"

namespace shmr::glue {
namespace {

using format::NodeKind;

// Tiny attribute values (class, dim, tzone, ...) are copied into ordinary
// vectors: R reads them constantly, and the object they belong to already
// keeps the region mapped. Anything larger stays a view, so it serializes as
// a name and the object's serialized size does not grow with its attributes.
constexpr uint64_t kPlainAttributeBytes = 64;

enum class Role { Element, Attribute };

struct Slot {
  NodeView node;
  Role role;
  bool plain = false;     // copied rather than viewed
  bool has_view = false;  // this object or a part of it is a view
  std::vector<size_t> children;
  std::vector<std::pair<std::string, size_t>> attributes;
  std::vector<StringRef> strings;  // plain String slots: validated elements
};

uint64_t payload_bytes(const NodeView& node) {
  if (node.kind() == NodeKind::String) return node.data_size() + 9 * node.length();
  return node.data_size();
}

bool is_viewable(NodeKind kind) {
  return kind != NodeKind::Null && kind != NodeKind::List && kind != NodeKind::Serialized;
}

class Planner {
 public:
  explicit Planner(const RegionReader& reader) : reader_(reader) {}

  // Collects every slot reachable from `start`; returns them children first.
  std::vector<Slot> plan(uint64_t start) {
    std::vector<std::pair<uint64_t, Role>> pending{{start, Role::Element}};
    while (!pending.empty()) {
      auto [index, role] = pending.back();
      pending.pop_back();
      if (slot_of_.count(key(index, role))) continue;
      Slot slot{reader_.node(index), role};
      for (uint32_t a = 0; a < slot.node.attribute_count(); ++a)
        pending.push_back({slot.node.attribute_value(a), Role::Attribute});
      if (slot.node.kind() == NodeKind::List)
        for (uint64_t i = 0; i < slot.node.length(); ++i)
          pending.push_back({slot.node.child(i), role});
      slot_of_[key(index, role)] = slots_.size();
      slots_.push_back(std::move(slot));
    }

    // Children have smaller node indices (checked by NodeView), so sorting by
    // index decodes every child before its parent.
    std::vector<size_t> order(slots_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return slots_[a].node.index() < slots_[b].node.index();
    });
    std::vector<size_t> position(slots_.size());
    for (size_t i = 0; i < order.size(); ++i) position[order[i]] = i;

    std::vector<Slot> sorted;
    sorted.reserve(slots_.size());
    for (size_t i : order) sorted.push_back(std::move(slots_[i]));
    for (Slot& slot : sorted) link(slot, position, sorted);
    return sorted;
  }

 private:
  static uint64_t key(uint64_t index, Role role) {
    return index * 2 + (role == Role::Attribute ? 1 : 0);
  }

  void link(Slot& slot, const std::vector<size_t>& position, const std::vector<Slot>& sorted) {
    const NodeView& node = slot.node;
    Role child_role = slot.role;
    for (uint32_t a = 0; a < node.attribute_count(); ++a) {
      size_t at = position[slot_of_.at(key(node.attribute_value(a), Role::Attribute))];
      slot.attributes.emplace_back(node.attribute_name(a), at);
    }
    // dim must be set before dimnames (setting dim drops dimnames).
    std::stable_sort(slot.attributes.begin(), slot.attributes.end(),
                     [](const auto& a, const auto& b) { return a.first == "dim" && b.first != "dim"; });
    if (node.kind() == NodeKind::List)
      for (uint64_t i = 0; i < node.length(); ++i)
        slot.children.push_back(position[slot_of_.at(key(node.child(i), child_role))]);

    slot.plain = is_viewable(node.kind()) && slot.role == Role::Attribute &&
                 payload_bytes(node) <= kPlainAttributeBytes;
    if (slot.plain && node.kind() == NodeKind::String)
      for (uint64_t i = 0; i < node.length(); ++i) slot.strings.push_back(node.string_at(i));

    slot.has_view = is_viewable(node.kind()) && !slot.plain;
    for (size_t c : slot.children) slot.has_view = slot.has_view || sorted[c].has_view;
    for (const auto& a : slot.attributes) slot.has_view = slot.has_view || sorted[a.second].has_view;
  }

  const RegionReader& reader_;
  std::vector<Slot> slots_;
  std::unordered_map<uint64_t, size_t> slot_of_;
};

SEXP plain_copy(const Slot& slot) {
  const NodeView& node = slot.node;
  R_xlen_t n = static_cast<R_xlen_t>(node.length());
  SEXP out = PROTECT(Rf_allocVector(r_type(node.kind()), n));
  if (node.kind() == NodeKind::String) {
    for (R_xlen_t i = 0; i < n; ++i) {
      const StringRef& s = slot.strings[static_cast<size_t>(i)];
      SET_STRING_ELT(out, i,
                     s.encoding == format::StringEncoding::Missing
                         ? NA_STRING
                         : Rf_mkCharLenCE(s.data, static_cast<int>(s.size), r_encoding(s.encoding)));
    }
  } else if (node.data_size() > 0) {
    std::memcpy(writable_data(out), node.data(), node.data_size());
  }
  UNPROTECT(1);
  return out;
}

SEXP unserialized(const NodeView& node) {
  SEXP raw = PROTECT(Rf_allocVector(RAWSXP, static_cast<R_xlen_t>(node.data_size())));
  if (node.data_size() > 0) std::memcpy(RAW(raw), node.data(), node.data_size());
  SEXP call = PROTECT(Rf_lang2(Rf_install("unserialize"), raw));
  SEXP value = Rf_eval(call, R_BaseEnv);
  UNPROTECT(2);
  return value;
}

// Builds the R objects for `slots` in order; only R API calls, so it runs
// inside one unwind_protect.
void build_objects(const std::vector<Slot>& slots, const std::shared_ptr<Mapping>& mapping,
                   SEXP objects) {
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    const NodeView& node = slot.node;
    SEXP obj = R_NilValue;
    switch (node.kind()) {
      case NodeKind::Null:
        break;
      case NodeKind::List:
        obj = Rf_allocVector(VECSXP, static_cast<R_xlen_t>(node.length()));
        break;
      case NodeKind::Serialized:
        obj = unserialized(node);
        break;
      default:
        obj = slot.plain ? plain_copy(slot) : make_view(mapping, node);
        break;
    }
    SET_VECTOR_ELT(objects, static_cast<R_xlen_t>(i), obj);
    if (node.kind() == NodeKind::Null || node.kind() == NodeKind::Serialized) continue;
    for (size_t c = 0; c < slot.children.size(); ++c)
      SET_VECTOR_ELT(obj, static_cast<R_xlen_t>(c),
                     VECTOR_ELT(objects, static_cast<R_xlen_t>(slot.children[c])));
    for (const auto& attribute : slot.attributes)
      Rf_setAttrib(obj, Rf_install(attribute.first.c_str()),
                   VECTOR_ELT(objects, static_cast<R_xlen_t>(attribute.second)));
  }
}

struct BuildJob {
  const std::vector<Slot>* slots;
  const std::shared_ptr<Mapping>* mapping;
  SEXP objects;
};

SEXP run_build(void* data) {
  auto* job = static_cast<BuildJob*>(data);
  build_objects(*job->slots, *job->mapping, job->objects);
  return R_NilValue;
}

// R refuses some attribute values a damaged region can hold (names longer
// than the vector, a dim that does not fit), and unserialize() can fail:
// say which region the object came from. A calling handler costs nothing
// until an error happens.
SEXP explain_build_error(SEXP condition, void* data) {
  const char* region = static_cast<const char*>(data);
  const char* message = "unknown error";
  if (TYPEOF(condition) == VECSXP && XLENGTH(condition) > 0 &&
      TYPEOF(VECTOR_ELT(condition, 0)) == STRSXP && XLENGTH(VECTOR_ELT(condition, 0)) > 0)
    message = CHAR(STRING_ELT(VECTOR_ELT(condition, 0), 0));
  Rf_errorcall(R_NilValue, "shmr: the object in shared region '%s' could not be rebuilt: %s", region,
               message);
}

}  // namespace

SEXP decode_object(const std::shared_ptr<Mapping>& mapping, uint64_t node) {
  std::vector<Slot> slots = Planner(mapping->reader()).plan(node);
  for (const Slot& slot : slots)
    for (const StringRef& s : slot.strings)
      if (s.size > 0x7fffffff) throw Error(ErrorKind::Corrupt, "string element longer than R allows");

  cpp11::sexp objects(cpp11::safe[Rf_allocVector](VECSXP, static_cast<R_xlen_t>(slots.size())));
  BuildJob job{&slots, &mapping, objects};
  const std::string& region = mapping->region().name();
  cpp11::unwind_protect([&] {
    R_withCallingErrorHandler(run_build, &job, explain_build_error,
                              const_cast<char*>(region.c_str()));
  });

  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    if (slot.node.kind() == NodeKind::List && slot.role == Role::Element)
      remember_list(VECTOR_ELT(objects, static_cast<R_xlen_t>(i)), mapping, slot.node.index(),
                    !slot.has_view);
  }
  remember_mapping(mapping);
  // The slots list would otherwise count as a second reference to every
  // object until it is collected, and R would copy the result before its
  // first change (fatal for writable shares). Nothing below allocates.
  SEXP result = VECTOR_ELT(objects, static_cast<R_xlen_t>(slots.size() - 1));
  for (R_xlen_t i = 0; i < static_cast<R_xlen_t>(slots.size()); ++i)
    SET_VECTOR_ELT(objects, i, R_NilValue);
  return result;
}

}  // namespace shmr::glue
