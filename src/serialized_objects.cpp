#include "serialized_objects.h"

#include <cpp11/protect.hpp>

#include <new>
#include <unordered_map>

namespace shmr::glue {
namespace {

struct Table {
  std::unordered_map<uint64_t, R_xlen_t> position_of;  // node -> position in the kept objects
};

Table* table_of(SEXP table) noexcept {
  if (TYPEOF(table) != EXTPTRSXP) return nullptr;
  return static_cast<Table*>(R_ExternalPtrAddr(table));
}

void finalize_table(SEXP pointer) {
  auto* table = static_cast<Table*>(R_ExternalPtrAddr(pointer));
  R_ClearExternalPtr(pointer);
  delete table;
}

}  // namespace

SEXP new_serialized_objects() {
  // The pointer and its finalizer first (R calls that may raise, with no
  // C++ object alive), then the map, which a failed allocation leaves out.
  SEXP pointer = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(pointer, finalize_table, TRUE);
  Table* table = new (std::nothrow) Table();
  if (table == nullptr) Rf_error("shmr: out of memory decoding a shared object");
  R_SetExternalPtrAddr(pointer, table);
  UNPROTECT(1);
  return pointer;
}

SEXP serialized_object(SEXP table, uint64_t node) noexcept {
  Table* t = table_of(table);
  if (t == nullptr) return nullptr;
  try {
    auto found = t->position_of.find(node);
    if (found == t->position_of.end()) return nullptr;
    return VECTOR_ELT(R_ExternalPtrProtected(table), found->second);
  } catch (...) {
    return nullptr;
  }
}

void keep_serialized_object(SEXP table, uint64_t node, SEXP value) {
  Table* t = table_of(table);
  if (t == nullptr || t->position_of.count(node) != 0) return;
  SEXP kept = R_ExternalPtrProtected(table);
  const R_xlen_t used = static_cast<R_xlen_t>(t->position_of.size());
  if (kept == R_NilValue || XLENGTH(kept) == used) {
    // Twice the room: most tables keep one object (a region's stream).
    SEXP grown = PROTECT(cpp11::safe[Rf_allocVector](VECSXP, used == 0 ? 1 : 2 * used));
    for (R_xlen_t i = 0; i < used; ++i) SET_VECTOR_ELT(grown, i, VECTOR_ELT(kept, i));
    R_SetExternalPtrProtected(table, grown);
    UNPROTECT(1);
    kept = grown;
  }
  // The map first: if it cannot grow, nothing is kept (the node is simply
  // unserialized again next time).
  t->position_of.emplace(node, used);
  SET_VECTOR_ELT(kept, used, value);
}

}  // namespace shmr::glue
