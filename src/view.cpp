#include "view.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/decimal.h"
#include "core/error.h"
#include "core/names.h"
#include "core/pages.h"
#include "r_boundary.h"
#include "r_types.h"
#include "view_classes.h"
#include "writable_copies.h"

namespace shmr::glue {

std::atomic<uint64_t> view_generation{0};

SEXP unwrapped(SEXP x) {
  // R's wrapper (altclasses.c): data1 the wrapped object, of the same type;
  // data2 two integers (sortedness, no NA). R wraps wrappers only a few deep.
  for (int depth = 0; depth < 8 && ALTREP(x) && !is_view(x); ++depth) {
    SEXP inner = R_altrep_data1(x);
    SEXP meta = R_altrep_data2(x);
    if (TYPEOF(inner) != TYPEOF(x) || TYPEOF(meta) != INTSXP || ALTREP(meta) ||
        XLENGTH(meta) != 2)
      break;
    x = inner;
  }
  return x;
}

namespace {

// The compact state's field that carries a list's length (FORMAT.md 4).
constexpr const char* kListLengthField = "length";

void finalize_handle(SEXP pointer) {
  auto* handle = static_cast<ViewHandle*>(R_ExternalPtrAddr(pointer));
  R_ClearExternalPtr(pointer);
  try {
    delete handle;
  } catch (...) {
    // Destructors here only unmap and unlink; nothing to report at GC time.
  }
}

}  // namespace

bool is_view(SEXP x) { return view_class_of(x) != nullptr; }

void own_revived_handle(SEXP pointer) { R_RegisterCFinalizerEx(pointer, finalize_handle, TRUE); }

ViewHandle* view_handle(SEXP x) {
  if (!is_view(x)) return nullptr;
  SEXP pointer = R_altrep_data1(x);
  if (TYPEOF(pointer) != EXTPTRSXP) return nullptr;
  return static_cast<ViewHandle*>(R_ExternalPtrAddr(pointer));
}

namespace {

// A view of `node` on exactly `mapping`.
SEXP new_view(const std::shared_ptr<Mapping>& mapping, const NodeView& node) {
  const R_altrep_class_t* cls = view_class_for(node.kind());
  if (cls == nullptr) Rf_error("shmr: internal error: no view class for node kind");
  SEXP pointer = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(pointer, finalize_handle, TRUE);
  ViewHandle* handle = nullptr;
  try {
    handle = new ViewHandle(mapping, node);
  } catch (...) {
    handle = nullptr;
  }
  if (handle == nullptr) Rf_error("shmr: out of memory creating a view");
  R_SetExternalPtrAddr(pointer, handle);
  SEXP view = R_new_altrep(*cls, pointer, R_NilValue);
  views_changed();
  UNPROTECT(1);
  return view;
}

// What a lookup found. While the view is made it is owned by an external
// pointer, so an R error there (allocation) leaks nothing and skips no
// destructor: the frames in between hold plain data only.
struct FoundNode {
  std::shared_ptr<Mapping> mapping;
  NodeView node;
  // No mapping may be made for a view of it (MappingLimitReached): an
  // ordinary vector with a copy of its data stands for the view.
  bool copy = false;
};

}  // namespace

SEXP data_copy(const NodeView& node) {
  SEXP out = PROTECT(Rf_allocVector(r_type(node.kind()), static_cast<R_xlen_t>(node.length())));
  if (node.data_size() > 0) std::memcpy(writable_data(out), node.data(), node.data_size());
  UNPROTECT(1);
  return out;
}

namespace {

void delete_found_node(SEXP holder) {
  delete static_cast<FoundNode*>(R_ExternalPtrAddr(holder));
  R_ClearExternalPtr(holder);
}

// `node` of `preferred`'s file, on the mapping a new view of it may read, or
// to be copied when no other mapping may be made. Throws like
// mapping_for_view() otherwise.
FoundNode found_for_view(const std::shared_ptr<Mapping>& preferred, const NodeView& node) {
  const bool fixed_width = format::element_size(node.kind()) != 0;
  try {
    auto mapping = mapping_for_view(preferred, node.index(), fixed_width);
    return FoundNode{mapping, mapping->reader().node(node.index())};
  } catch (const MappingLimitReached&) {
    return FoundNode{preferred, node, true};
  }
}

// Makes the view of the node that `find` (which may throw) returns;
// nullptr, with the message in `message`, when it throws.
template <typename Find>
SEXP view_on_found_node(Find&& find, ErrorMessage& message) {
  collect_if_many_mappings();
  SEXP holder = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue));
  R_RegisterCFinalizer(holder, delete_found_node);
  auto hold_found_node = [&] { R_SetExternalPtrAddr(holder, new FoundNode(find())); };
  bool refused = false;
  capture_exception(message, [&] {
    try {
      hold_found_node();
    } catch (const AddressSpaceRefused&) {
      refused = true;
    }
  });
  if (refused) {
    // Objects no longer referenced (a pool worker's of earlier tasks) keep
    // their mappings until the collector frees them: as R does when no file
    // descriptor is left, collect, then try once more.
    R_gc();
    capture_exception(message, hold_found_node);
  }
  if (message.set()) {
    UNPROTECT(1);
    return nullptr;
  }
  const FoundNode& found = *static_cast<FoundNode*>(R_ExternalPtrAddr(holder));
  SEXP view = found.copy ? data_copy(found.node) : new_view(found.mapping, found.node);
  delete_found_node(holder);
  UNPROTECT(1);
  return view;
}

// The same; with `errors_are_fatal`, a failed lookup is an R error,
// otherwise nullptr.
template <typename Find>
SEXP view_on_found_node(Find&& find, bool errors_are_fatal) {
  ErrorMessage message;
  SEXP view = view_on_found_node(std::forward<Find>(find), message);
  if (view == nullptr && errors_are_fatal) raise_r_error(message);
  return view;
}

}  // namespace

ViewHandle* handle_for_revived_view(const std::shared_ptr<Mapping>& preferred, const NodeView& node) {
  FoundNode found = found_for_view(preferred, node);
  if (found.copy) return nullptr;
  return new ViewHandle(found.mapping, found.node);
}

namespace {

// A view of `node` on a mapping of the same file that `preferred` refuses
// it on (mapping.h): a duplicate, or a second decode of the same object.
SEXP view_on_other_mapping(const std::shared_ptr<Mapping>& preferred, const NodeView& node) {
  return view_on_found_node([&] { return found_for_view(preferred, node); }, true);
}

}  // namespace

SEXP make_view(const std::shared_ptr<Mapping>& mapping, const NodeView& node) {
  if (format::element_size(node.kind()) != 0 && mapping->refuses_new_view_of(node.index()))
    return view_on_other_mapping(mapping, node);
  return new_view(mapping, node);
}

// A slice reads the whole view's mapping: it is made only for a task's
// argument (pool_apply()), which R copies before any change.
SEXP make_slice(SEXP x, uint64_t first, uint64_t count) {
  ViewHandle* whole = view_handle(x);
  if (whole == nullptr || whole->mapping->is_closed() || whole->is_slice() ||
      whole->holds_private_values() ||
      format::element_size(whole->node.kind()) == 0 || first > whole->node.length() ||
      count > whole->node.length() - first)
    return nullptr;
  SEXP slice = PROTECT(new_view(whole->mapping, whole->node));
  ViewHandle* handle = view_handle(slice);
  handle->set_slice(first, count);
  UNPROTECT(1);
  return slice;
}

namespace {

// The handle of a view that has none: an unavailable object's once its
// region can be mapped (revive_unavailable_view()), else an R error. Apart
// from open_view_handle(), whose every call would otherwise clear the
// message buffer.
ViewHandle& revived_handle_or_raise(SEXP x) {
  ErrorMessage why;
  if (!is_unavailable(x)) Rf_error("shmr: this shared object has been released");
  if (!revive_unavailable_view(x, why)) raise_unavailable(x, why);
  return *own_handle(x);
}

}  // namespace

ViewHandle& open_view_handle(SEXP x) {
  ViewHandle* handle = own_handle(x);
  if (handle == nullptr) handle = &revived_handle_or_raise(x);
  if (handle->mapping->is_closed())
    Rf_error("shmr: shared object '%s' was closed; its data can no longer be used",
             handle->mapping->region().name().c_str());
  if (handle->snapshot_due) take_snapshot(x, *handle);
  return *handle;
}

SEXP view_on_mapping(const std::function<std::shared_ptr<Mapping>(NodeView&)>& find,
                     ErrorMessage& message) {
  return view_on_found_node(
      [&] {
        NodeView node;
        auto preferred = find(node);
        return found_for_view(preferred, node);
      },
      message);
}

SEXP list_state_of(const std::string& region, const names::RegionMade& made, uint64_t node,
                   std::optional<uint64_t> length, const char* origin) {
  // Formatted into a fixed buffer, so that no C++ object is live when R
  // allocates.
  char text[1024];
  size_t size = 0;
  ErrorMessage message;
  capture_exception(message, [&] {
    std::string state = names::format_compact_view_state({region, node}, made);
    if (length) state += std::string(";") + kListLengthField + "=" + std::to_string(*length);
    if (origin != nullptr && origin[0] != '\0') state += std::string(";") + kOriginField + "=" + origin;
    if (state.size() > sizeof text) throw Error(ErrorKind::InvalidArgument, "list state too long");
    size = state.size();
    std::memcpy(text, state.data(), size);
  });
  if (message.set()) raise_r_error(message);
  SEXP state = Rf_allocVector(RAWSXP, static_cast<R_xlen_t>(size));
  std::memcpy(RAW(state), text, size);
  return state;
}

StateBytes state_bytes(SEXP state) {
  if (TYPEOF(state) == RAWSXP && XLENGTH(state) > 0 && XLENGTH(state) <= 1024)
    return {RAW(state), static_cast<size_t>(XLENGTH(state)), true};
  if (TYPEOF(state) == STRSXP && XLENGTH(state) == 1 && STRING_ELT(state, 0) != NA_STRING) {
    SEXP text = STRING_ELT(state, 0);
    return {reinterpret_cast<const unsigned char*>(CHAR(text)), static_cast<size_t>(LENGTH(text)),
            false};
  }
  return {};
}

std::optional<ListState> parse_list_state(const StateBytes& bytes, std::string* unknown_fields) {
  const std::string text(reinterpret_cast<const char*>(bytes.data), bytes.size);
  if (!bytes.compact) {
    auto view = names::parse_view_state(text);
    if (!view) return std::nullopt;
    return ListState{*view, std::nullopt};
  }
  if (bytes.size == 0 || bytes.size > 1024) return std::nullopt;
  auto parsed = names::parse_compact_view_state(text);
  if (!parsed) return std::nullopt;
  ListState state{parsed->view, std::nullopt};
  if (parsed->fields.empty()) return state;
  auto fields = names::parse_compact_fields(parsed->fields);
  if (!fields) return std::nullopt;
  for (const names::CompactField& field : *fields) {
    if (field.first == names::kMadeField) {
      state.made = names::parse_made(field.second);
      if (!state.made) return std::nullopt;
      continue;
    }
    if (field.first == kOriginField) {
      state.origin = field.second;
      continue;
    }
    if (field.first != kListLengthField) {
      if (unknown_fields != nullptr) *unknown_fields = parsed->fields;
      return std::nullopt;
    }
    auto length = parse_decimal(field.second);
    if (!length) return std::nullopt;
    state.length = *length;
  }
  return state;
}

SEXP fresh_view_of(const ViewHandle& handle) {
  const ViewHandle* original = &handle;
  return view_on_found_node(
      [original] {
        const bool fixed_width = format::element_size(original->node.kind()) != 0;
        auto mapping = mapping_for_view(original->mapping, original->node.index(), fixed_width);
        return FoundNode{mapping, mapping->reader().node(original->node.index())};
      },
      false);
}

SEXP slice_on_own_mapping(ViewHandle& handle, uint64_t first, uint64_t count) {
  if (format::element_size(handle.node.kind()) == 0 || first > handle.count ||
      count > handle.count - first)
    return nullptr;
  // A fresh view of the region would not see this process's writes.
  if (view_holds_own_writes(handle)) return nullptr;
  SEXP slice = fresh_view_of(handle);
  if (slice == nullptr) return nullptr;
  view_handle(slice)->set_slice(handle.first + first, count);
  return slice;
}

bool view_values_trusted(ViewHandle& handle) {
  if (handle.mapping->is_closed() || view_writes_through(handle)) return false;
  return !view_holds_own_writes(handle);
}

bool view_writes_through(const ViewHandle& handle) {
  return handle.mapping->region().access() == Access::SharedWritable;
}

bool view_holds_own_writes(ViewHandle& handle) {
  if (view_writes_through(handle)) return false;
  if (handle.known_written || strings_written(handle)) return true;
  const uint64_t pointers = handle.mapping->writable_pointers();
  if (handle.clean_at_pointers == pointers) return false;
  // Private pages stay private: once written, always written.
  if (view_has_private_pages(handle)) {
    handle.known_written = true;
    return true;
  }
  handle.clean_at_pointers = pointers;
  // A view keeps its data pointer in the last-view cache
  // (altrep_vector.cpp), where asking again would not be counted.
  views_changed();
  return false;
}

bool view_has_private_pages(const ViewHandle& handle) {
  if (!handle.mapping->writable_pointer_given()) return false;
  return pages::has_private_copies(handle.data(), handle.data_size());
}

}  // namespace shmr::glue
