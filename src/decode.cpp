#include "decode.h"

#include <cpp11/protect.hpp>
#include <cpp11/sexp.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "list_registry.h"
#include "r_types.h"
#include "serialized_objects.h"
#include "view.h"

namespace shmr::glue {
namespace {

using format::NodeKind;

// Tiny attribute values (class, dim, tzone, ...) are copied into ordinary
// vectors: R reads them constantly, and the object they belong to already
// keeps the region mapped. Anything larger stays a view, so it serializes as
// a name and the object's serialized size does not grow with its attributes.
constexpr uint64_t kPlainAttributeBytes = 64;

// Without list views a shared list is an ordinary list, and serialize()
// writes each element: a view costs R's wrapper and its name (about 64
// bytes), so in a long list an element whose data is smaller travels
// cheaper as a copy. A list of a million small elements then serializes
// like the plain list, not 8 times larger, and decoding it makes no views.
// A list view copies the same elements when they are read, for the same
// reason: making and holding a view costs more than such data, and reading
// a million of them costs about what the plain list would. Short lists keep
// every element a view, as a vector is one however small.
constexpr uint64_t kPlainElementBytes = 56;
constexpr uint64_t kPlainElementsFrom = 64;

enum class Role { Element, Attribute };

// What the decoder makes of lists and small elements on this R.
struct Rules {
  bool list_views;            // element lists become list views (R >= 4.3)
  bool plain_small_elements;  // small list elements are copied (older R)
};

constexpr Rules kRules{have_list_views(), !have_list_views()};

struct Slot {
  NodeView node;
  Role role;
  bool expanded = false;  // a list built here with its elements
  bool plain = false;     // a vector copied rather than viewed
  bool witnessed = false;  // an expanded list holding a view (see list_registry.h)
  std::vector<size_t> children;
  std::vector<std::pair<std::string, size_t>> attributes;
  std::vector<StringRef> strings;  // plain String slots: validated elements
  // Serialized slots: the object the decoded root's table keeps for the
  // node (unserialized before, maybe through another view), or else the
  // position of an earlier slot of the same node (in another role).
  SEXP known = nullptr;
  size_t same_as = kNoSlot;
  // StreamElement slots: the slot of their stream (a Serialized node).
  size_t stream = kNoSlot;
  static constexpr size_t kNoSlot = static_cast<size_t>(-1);
};

uint64_t payload_bytes(const NodeView& node) {
  if (node.kind() == NodeKind::String) return node.data_size() + 9 * node.length();
  return node.data_size();
}

bool is_viewable(NodeKind kind) {
  return kind != NodeKind::Null && kind != NodeKind::List && kind != NodeKind::Serialized &&
         kind != NodeKind::StreamElement;
}

// True when a new view of `node` cannot read `mapping` (make_view() would
// take another mapping): a fixed-width node that a live view may write to
// there. Strings are never written in place, so their views share one.
bool refuses_view(const Mapping& mapping, const NodeView& node) {
  return is_viewable(node.kind()) && format::element_size(node.kind()) != 0 &&
         mapping.refuses_new_view_of(node.index());
}

bool is_pairlist(const NodeView& node) {
  return node.kind() == NodeKind::List && (node.flags() & format::kNodeFromPairlist) != 0;
}

// True for a region written in place (a writable share, a buffer): each of
// its elements must read it, since a copy would take writes that the
// region and every other process never see.
bool written_in_place(const RegionReader& reader) {
  return (reader.header().flags & format::kFlagReadonly) == 0;
}

class Planner {
 public:
  // `copy_all`: every vector is copied and every list built here, so the
  // object reads no mapping (decode_copy()).
  explicit Planner(const RegionReader& reader, bool copy_all = false)
      : reader_(reader),
        small_elements_copied_(kRules.plain_small_elements && !written_in_place(reader)),
        copy_all_(copy_all) {}

  // Collects every slot `start` needs; returns them children first, so the
  // last one is `start`'s. A list that becomes a list view needs only its
  // attributes: its elements are decoded when read.
  std::vector<Slot> plan(uint64_t start) {
    start_ = start;
    // Without list views the plan of the root holds about every node.
    if (!kRules.list_views && start == reader_.root()) {
      slots_.reserve(static_cast<size_t>(std::min<uint64_t>(reader_.node_count(), 1u << 24)));
      slot_of_.reserve(slots_.capacity());
    }
    std::vector<std::pair<uint64_t, Role>> pending{{start, Role::Element}};
    while (!pending.empty()) {
      auto [index, role] = pending.back();
      pending.pop_back();
      if (slot_of_.count(key(index, role))) continue;
      Slot slot{reader_.node(index), role};
      for (uint32_t a = 0; a < slot.node.attribute_count(); ++a)
        pending.push_back({slot.node.attribute_value(a), Role::Attribute});
      // An object stored serialized needs its stream, which holds it.
      if (slot.node.kind() == NodeKind::StreamElement) pending.push_back({slot.node.stream(), Role::Element});
      if (slot.node.kind() == NodeKind::List) {
        slot.expanded =
            copy_all_ || !kRules.list_views || role == Role::Attribute || is_pairlist(slot.node);
        bool long_list = slot.node.length() >= kPlainElementsFrom;
        if (slot.expanded)
          for (uint64_t i = 0; i < slot.node.length(); ++i) {
            uint64_t child = slot.node.child(i);
            if (long_list && role == Role::Element) in_long_list_.insert(child);
            pending.push_back({child, role});
          }
      }
      slot_of_[key(index, role)] = slots_.size();
      slots_.push_back(std::move(slot));
    }

    // Children have smaller node indices (checked by NodeView), so sorting by
    // index decodes every child before its parent.
    std::vector<size_t> order(slots_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const Slot& x = slots_[a];
      const Slot& y = slots_[b];
      if (x.node.index() != y.node.index()) return x.node.index() < y.node.index();
      // The start node is also reached as an attribute only through a
      // corrupt region; keep its element slot last all the same.
      return x.role == Role::Attribute && y.role == Role::Element;
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
    for (uint32_t a = 0; a < node.attribute_count(); ++a) {
      size_t at = position[slot_of_.at(key(node.attribute_value(a), Role::Attribute))];
      slot.attributes.emplace_back(node.attribute_name(a), at);
    }
    // dim must be set before dimnames (setting dim drops dimnames).
    std::stable_sort(slot.attributes.begin(), slot.attributes.end(),
                     [](const auto& a, const auto& b) { return a.first == "dim" && b.first != "dim"; });
    if (slot.expanded)
      for (uint64_t i = 0; i < node.length(); ++i)
        slot.children.push_back(position[slot_of_.at(key(node.child(i), slot.role))]);
    if (node.kind() == NodeKind::StreamElement)
      slot.stream = position[slot_of_.at(key(node.stream(), Role::Element))];

    bool is_start = node.index() == start_ && slot.role == Role::Element;
    uint64_t bytes = payload_bytes(node);
    slot.plain = is_viewable(node.kind()) &&
                 (copy_all_ || (slot.role == Role::Attribute
                                    ? bytes <= kPlainAttributeBytes
                                    : small_elements_copied_ && !is_start && bytes <= kPlainElementBytes &&
                                          in_long_list_.count(node.index()) != 0));
    if (slot.plain && node.kind() == NodeKind::String)
      for (uint64_t i = 0; i < node.length(); ++i) slot.strings.push_back(node.string_at(i));

    for (size_t c : slot.children) {
      const Slot& child = sorted[c];
      bool is_view = (is_viewable(child.node.kind()) && !child.plain) ||
                     (child.node.kind() == NodeKind::List && !child.expanded);
      slot.witnessed = slot.witnessed || is_view || (child.witnessed && !is_pairlist(child.node));
    }
  }

  const RegionReader& reader_;
  const bool small_elements_copied_;
  const bool copy_all_;
  uint64_t start_ = 0;
  std::vector<Slot> slots_;
  std::unordered_map<uint64_t, size_t> slot_of_;
  std::unordered_set<uint64_t> in_long_list_;  // element nodes of lists of kPlainElementsFrom or more
};

// Plans `node` and checks what R cannot take.
std::vector<Slot> plan_object(const RegionReader& reader, uint64_t node, bool copy_all = false) {
  std::vector<Slot> slots = Planner(reader, copy_all).plan(node);
  for (const Slot& slot : slots)
    for (const StringRef& s : slot.strings)
      if (s.size > 0x7fffffff) throw Error(ErrorKind::Corrupt, "string element longer than R allows");
  return slots;
}

// A copy of `node`'s vector; `strings` are its validated elements when it is
// a String node.
SEXP plain_copy(const NodeView& node, const std::vector<StringRef>& strings) {
  if (node.kind() != NodeKind::String) return data_copy(node);
  R_xlen_t n = static_cast<R_xlen_t>(node.length());
  SEXP out = PROTECT(Rf_allocVector(STRSXP, n));
  for (R_xlen_t i = 0; i < n; ++i) {
    const StringRef& s = strings[static_cast<size_t>(i)];
    SET_STRING_ELT(out, i,
                   s.encoding == format::StringEncoding::Missing
                       ? NA_STRING
                       : Rf_mkCharLenCE(s.data, static_cast<int>(s.size), r_encoding(s.encoding)));
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

// A TRUE, FALSE or NA attribute value (POSIXlt's "balanced"): R's own code
// sets such attributes to its shared constants and some of it compares them
// by address, so a fresh vector would read as a different value there.
bool is_flag_attribute(const Slot& slot) {
  return slot.role == Role::Attribute && slot.plain && slot.node.kind() == NodeKind::Logical &&
         slot.node.length() == 1 && slot.attributes.empty();
}

SEXP shared_logical_constant(const NodeView& node) {
  int value = 0;
  std::memcpy(&value, node.data(), sizeof value);
  return Rf_ScalarLogical(value);
}

// The ordinary lists of older R that are objects in their own right (not
// pairlists, not attribute values) and hold a view, and on any R the
// pairlist that is the object decoded (whole, or as a list view's element;
// R has no ALTREP pairlist): they are registered as shared. One without a view is an ordinary copy, and keeps
// nothing alive.
bool is_registered_list(const Slot& slot, bool is_result) {
  if (!slot.expanded || slot.role != Role::Element || !slot.witnessed) return false;
  return is_pairlist(slot.node) ? is_result : !kRules.list_views;
}

// Builds the R objects for `slots` in order; only R API calls, so it runs
// inside one unwind_protect.
void build_objects(const std::vector<Slot>& slots, const std::shared_ptr<Mapping>& mapping,
                   SEXP objects, SEXP table) {
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    const NodeView& node = slot.node;
    R_xlen_t at = static_cast<R_xlen_t>(i);
    SEXP obj = R_NilValue;
    switch (node.kind()) {
      case NodeKind::Null:
        break;
      case NodeKind::List:
        obj = slot.expanded ? Rf_allocVector(VECSXP, static_cast<R_xlen_t>(node.length()))
                            : make_list_view(mapping, node, table);
        break;
      case NodeKind::Serialized:
        obj = slot.known != nullptr           ? slot.known
              : slot.same_as != Slot::kNoSlot ? VECTOR_ELT(objects, static_cast<R_xlen_t>(slot.same_as))
                                              : unserialized(node);
        break;
      case NodeKind::StreamElement: {
        // The stream (built before: its node index is smaller) is the list
        // of the region's serialized objects; the node says which one.
        SEXP stream = VECTOR_ELT(objects, static_cast<R_xlen_t>(slot.stream));
        if (TYPEOF(stream) != VECSXP || node.length() >= static_cast<uint64_t>(XLENGTH(stream)))
          Rf_error("node %llu names object %llu of a stream that does not hold it",
                   static_cast<unsigned long long>(node.index()),
                   static_cast<unsigned long long>(node.length()));
        obj = VECTOR_ELT(stream, static_cast<R_xlen_t>(node.length()));
        break;
      }
      default:
        obj = is_flag_attribute(slot) ? shared_logical_constant(node)
              : slot.plain            ? plain_copy(node, slot.strings)
                                      : make_view(mapping, node);
        break;
    }
    SET_VECTOR_ELT(objects, at, obj);
    if (node.kind() == NodeKind::Null || node.kind() == NodeKind::Serialized ||
        node.kind() == NodeKind::StreamElement)
      continue;
    for (size_t c = 0; c < slot.children.size(); ++c)
      SET_VECTOR_ELT(obj, static_cast<R_xlen_t>(c),
                     VECTOR_ELT(objects, static_cast<R_xlen_t>(slot.children[c])));
    for (const auto& attribute : slot.attributes)
      Rf_setAttrib(obj, Rf_install(attribute.first.c_str()),
                   VECTOR_ELT(objects, static_cast<R_xlen_t>(attribute.second)));
    if (is_pairlist(node) && slot.expanded) SET_VECTOR_ELT(objects, at, Rf_VectorToPairList(obj));
  }
}

struct BuildJob {
  const std::vector<Slot>* slots;
  const std::shared_ptr<Mapping>* mapping;
  SEXP objects;
  SEXP table;
};

SEXP run_build(void* data) {
  auto* job = static_cast<BuildJob*>(data);
  build_objects(*job->slots, *job->mapping, job->objects, job->table);
  return R_NilValue;
}

// R refuses some attribute values a damaged region can hold (names longer
// than the vector, a dim that does not fit), and unserialize() can fail:
// say which region the object came from.
SEXP explain_build_error(SEXP condition, void* data) {
  const char* region = static_cast<const char*>(data);
  const char* message = "unknown error";
  if (TYPEOF(condition) == VECSXP && XLENGTH(condition) > 0 &&
      TYPEOF(VECTOR_ELT(condition, 0)) == STRSXP && XLENGTH(VECTOR_ELT(condition, 0)) > 0)
    message = CHAR(STRING_ELT(VECTOR_ELT(condition, 0), 0));
  Rf_errorcall(R_NilValue, "shmr: the object in shared region '%s' could not be rebuilt: %s", region,
               message);
}

// Only attributes and serialized parts meet R's refusals above. The handler
// is left out for everything else (a plain vector, a list of them): it
// costs a few allocations per map, and the first one in a process parses
// R's helper for it (about a tenth of a millisecond).
bool may_be_refused(const std::vector<Slot>& slots) {
  for (const Slot& slot : slots)
    if (!slot.attributes.empty() || slot.node.kind() == NodeKind::Serialized ||
        slot.node.kind() == NodeKind::StreamElement)
      return true;
  return false;
}

// Whether building `slots` needs the table of serialized objects: to
// unserialize a node, or to hand it to a list view, whose elements (read
// later) may be serialized nodes.
bool needs_table(const std::vector<Slot>& slots) {
  for (const Slot& slot : slots)
    if (slot.node.kind() == NodeKind::Serialized || (slot.node.kind() == NodeKind::List && !slot.expanded))
      return true;
  return false;
}

// Points each Serialized slot at the object `table` keeps for its node, or
// at the first slot of the same node: one node, one object.
void find_serialized(std::vector<Slot>& slots, SEXP table) {
  std::unordered_map<uint64_t, size_t> first;
  for (size_t i = 0; i < slots.size(); ++i) {
    Slot& slot = slots[i];
    if (slot.node.kind() != NodeKind::Serialized) continue;
    slot.known = serialized_object(table, slot.node.index());
    if (slot.known != nullptr) continue;
    auto [at, inserted] = first.emplace(slot.node.index(), i);
    if (!inserted) slot.same_as = at->second;
  }
}

// Builds the objects of `slots`. `table` holds the objects unserialized for
// the decoded root the slots belong to (R_NilValue: the slots are a root,
// and get a new table if they need one).
SEXP build(std::vector<Slot>& slots, const std::shared_ptr<Mapping>& mapping, SEXP table) {
  cpp11::sexp own_table;
  if (table == R_NilValue && needs_table(slots)) {
    own_table = cpp11::safe[new_serialized_objects]();
    table = own_table;
  }
  find_serialized(slots, table);
  cpp11::sexp objects(cpp11::safe[Rf_allocVector](VECSXP, static_cast<R_xlen_t>(slots.size())));
  BuildJob job{&slots, &mapping, objects, table};
  const std::string& region = mapping->region().name();
  cpp11::unwind_protect([&] {
    if (may_be_refused(slots)) {
      R_withCallingErrorHandler(run_build, &job, explain_build_error,
                                const_cast<char*>(region.c_str()));
    } else {
      run_build(&job);
    }
  });

  // What was unserialized here, for the root's other views to take.
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].node.kind() == NodeKind::Serialized && slots[i].known == nullptr &&
        slots[i].same_as == Slot::kNoSlot)
      keep_serialized_object(table, slots[i].node.index(), VECTOR_ELT(objects, static_cast<R_xlen_t>(i)));
  for (size_t i = 0; i < slots.size(); ++i)
    if (is_registered_list(slots[i], i + 1 == slots.size()))
      remember_list(VECTOR_ELT(objects, static_cast<R_xlen_t>(i)), mapping, slots[i].node.index());
  // The slots list would otherwise count as a second reference to every
  // object until it is collected, and R would copy the result before its
  // first change (fatal for writable shares). Nothing below allocates.
  SEXP result = VECTOR_ELT(objects, static_cast<R_xlen_t>(slots.size() - 1));
  for (R_xlen_t i = 0; i < static_cast<R_xlen_t>(slots.size()); ++i)
    SET_VECTOR_ELT(objects, i, R_NilValue);
  return result;
}

// A mapping of `list`'s region on which none of the nodes that `slots` make
// views of has a live view: the list's own mapping when possible; nullptr
// when no other mapping of its file can be had.
std::shared_ptr<Mapping> mapping_for_views(const ListHandle& list, const std::vector<Slot>& slots) {
  auto is_free = [&](const Mapping& mapping) {
    for (const Slot& slot : slots)
      if (!slot.plain && refuses_view(mapping, slot.node))
        return false;
    return true;
  };
  if (is_free(*list.mapping)) return list.mapping;
  // Another mapping of the list's own file: its name may lead to a newer
  // region by now, whose nodes are other data.
  try {
    std::shared_ptr<Mapping> other = other_mapping_of_file(list.mapping, slots.back().node.index(), false);
    if (is_free(*other)) return other;
    return other_mapping_of_file(list.mapping, 0, true);
  } catch (const Error&) {
    // The region's name is gone, or leads to another file: no other mapping
    // of this file can be had.
    return nullptr;
  }
}

}  // namespace

SEXP decode_object(const std::shared_ptr<Mapping>& mapping, uint64_t node, SEXP table) {
  // A vector without attributes (what most maps of a vector are) is one
  // view: what the plan would come to, without its tables and allocations.
  NodeView start = mapping->reader().node(node);
  if (start.attribute_count() == 0 && is_viewable(start.kind())) {
    SEXP result = cpp11::unwind_protect([&] { return make_view(mapping, start); });
    remember_mapping(mapping);
    return result;
  }
  std::vector<Slot> slots = plan_object(mapping->reader(), node);
  SEXP result = build(slots, mapping, table);
  remember_mapping(mapping);
  return result;
}

SEXP decode_copy(const std::shared_ptr<Mapping>& mapping, uint64_t node) {
  if (written_in_place(mapping->reader())) return decode_object(mapping, node);
  std::vector<Slot> slots = plan_object(mapping->reader(), node, true);
  return build(slots, mapping, R_NilValue);
}

SEXP decode_list_element(const ListHandle& list, uint64_t position, SEXP table) {
  uint64_t node = list.node.child(position);
  // The common elements (a column, a vector without attributes, NULL) need
  // no plan: lapply() over a million of them makes a million of these.
  NodeView child = list.mapping->reader().node(node);
  if (child.attribute_count() == 0) {
    if (child.kind() == NodeKind::Null) return R_NilValue;
    // In a long list a small element is copied, as on older R (see
    // kPlainElementBytes): a view would cost more to make and to hold than
    // its data, and the list travels as one object anyway. Not in a region
    // written in place, where a copy would keep the writes to itself.
    if (is_viewable(child.kind()) && list.node.length() >= kPlainElementsFrom &&
        !written_in_place(list.mapping->reader()) &&
        payload_bytes(child) <= kPlainElementBytes) {
      std::vector<StringRef> strings;
      if (child.kind() == NodeKind::String)
        for (uint64_t i = 0; i < child.length(); ++i) strings.push_back(child.string_at(i));
      return cpp11::unwind_protect([&] { return plain_copy(child, strings); });
    }
    if (is_viewable(child.kind()) && !refuses_view(*list.mapping, child))
      return cpp11::unwind_protect([&] { return make_view(list.mapping, child); });
  }
  std::vector<Slot> slots = plan_object(list.mapping->reader(), node);
  std::shared_ptr<Mapping> mapping = mapping_for_views(list, slots);
  if (mapping == nullptr) {
    // Only the list's own mapping reads this file: what another object
    // views there already is copied (two objects never share private pages).
    // Only fixed-width nodes are refused, so no slot needs its strings read.
    for (Slot& slot : slots)
      if (!slot.plain && refuses_view(*list.mapping, slot.node)) slot.plain = true;
    return build(slots, list.mapping, table);
  }
  if (mapping == list.mapping) return build(slots, mapping, table);
  // Another mapping reads the same bytes (the same nodes, so the same
  // table); plan on it so the views point there.
  return decode_object(mapping, node, table);
}

}  // namespace shmr::glue
