#include "view_classes.h"

#include <array>

namespace shmr::glue {
namespace {

struct Slot {
  bool set = false;
  R_altrep_class_t cls;
};

std::array<Slot, format::kMaxNodeKind + 1>& slots() {
  static std::array<Slot, format::kMaxNodeKind + 1> table;
  return table;
}

}  // namespace

void register_view_class(format::NodeKind kind, R_altrep_class_t cls) {
  Slot& slot = slots()[static_cast<size_t>(kind)];
  slot.set = true;
  slot.cls = cls;
}

const R_altrep_class_t* view_class_for(format::NodeKind kind) {
  auto index = static_cast<size_t>(kind);
  if (index >= slots().size() || !slots()[index].set) return nullptr;
  return &slots()[index].cls;
}

const R_altrep_class_t* view_class_of(SEXP x) {
  if (!ALTREP(x)) return nullptr;
  for (const Slot& slot : slots())
    if (slot.set && R_altrep_inherits(x, slot.cls)) return &slot.cls;
  return nullptr;
}

const R_altrep_class_t* view_class_from_object(SEXP cls) {
  for (const Slot& slot : slots())
    if (slot.set && R_SEXP(slot.cls) == cls) return &slot.cls;
  return nullptr;
}

}  // namespace shmr::glue
