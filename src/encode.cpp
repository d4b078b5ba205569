#include "encode.h"

#include "r_api.h"
#include <cpp11/protect.hpp>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "attributes.h"
#include "core/error.h"
#include "view.h"

namespace shmr::glue {
namespace {

using format::NodeKind;
using format::StringEncoding;

StringEncoding encoding_of(SEXP ch) {
  switch (Rf_getCharCE(ch)) {
    case CE_UTF8:
      return StringEncoding::Utf8;
    case CE_LATIN1:
      return StringEncoding::Latin1;
    case CE_BYTES:
      return StringEncoding::Bytes;
    default:
      return StringEncoding::Native;
  }
}

// An ordinary (non-ALTREP) character vector: reading it cannot raise.
class PlainStrings : public StringSource {
 public:
  explicit PlainStrings(SEXP x) : x_(x) {}
  StringRef at(uint64_t i) const override {
    SEXP ch = STRING_ELT(x_, static_cast<R_xlen_t>(i));
    if (ch == NA_STRING) return {nullptr, 0, StringEncoding::Missing};
    return {CHAR(ch), static_cast<uint64_t>(LENGTH(ch)), encoding_of(ch)};
  }

 private:
  SEXP x_;
};

// A shmr string view: copied from its packed bytes, never materialised.
class RegionStrings : public StringSource {
 public:
  explicit RegionStrings(NodeView node) : node_(node) {}
  StringRef at(uint64_t i) const override { return node_.string_at(i); }

 private:
  NodeView node_;
};

// An ALTREP vector with no data pointer yet (a compact sequence such as
// 1:1e9): its elements are computed into the region through the class's
// Get_region method, so the vector is never expanded in R's heap first.
// The writer calls this after the region's space is reserved: a vector too
// large for the backing is refused before anything is allocated.
class AltrepElements : public VectorSource {
 public:
  explicit AltrepElements(SEXP x) : x_(x) {}
  void copy_to(void* destination, uint64_t length) const override {
    const R_xlen_t n = static_cast<R_xlen_t>(length);
    R_xlen_t done = 0;
    while (done < n) {
      const R_xlen_t chunk = std::min<R_xlen_t>(n - done, R_xlen_t{1} << 20);
      // Get_region runs the class's code, which may raise.
      R_xlen_t got = cpp11::unwind_protect([&] { return region(destination, done, chunk); });
      if (got <= 0) throw Error(ErrorKind::InvalidArgument, "a vector changed while sharing");
      done += got;
    }
  }

 private:
  R_xlen_t region(void* destination, R_xlen_t from, R_xlen_t count) const {
    switch (TYPEOF(x_)) {
      case LGLSXP:
        return LOGICAL_GET_REGION(x_, from, count, static_cast<int*>(destination) + from);
      case INTSXP:
        return INTEGER_GET_REGION(x_, from, count, static_cast<int*>(destination) + from);
      case REALSXP:
        return REAL_GET_REGION(x_, from, count, static_cast<double*>(destination) + from);
      case CPLXSXP:
        return COMPLEX_GET_REGION(x_, from, count, static_cast<Rcomplex*>(destination) + from);
      default:
        return RAW_GET_REGION(x_, from, count, static_cast<Rbyte*>(destination) + from);
    }
  }

  SEXP x_;
};

NodeKind vector_kind(SEXPTYPE type) {
  switch (type) {
    case LGLSXP:
      return NodeKind::Logical;
    case INTSXP:
      return NodeKind::Integer;
    case REALSXP:
      return NodeKind::Double;
    case CPLXSXP:
      return NodeKind::Complex;
    case RAWSXP:
      return NodeKind::Raw;
    case STRSXP:
      return NodeKind::String;
    case VECSXP:
    case LISTSXP:
      return NodeKind::List;
    case NILSXP:
      return NodeKind::Null;
    default:
      return NodeKind::Serialized;
  }
}

// serialize(x, NULL) with x passed as a value: placed directly in a call, a
// language object or symbol would be evaluated instead of serialized.
SEXP serialize_to_raw(SEXP x) {
  SEXP env = PROTECT(R_NewEnv(R_BaseEnv, FALSE, 1));
  SEXP symbol = Rf_install("object");
  Rf_defineVar(symbol, x, env);
  SEXP call = PROTECT(Rf_lang3(Rf_install("serialize"), symbol, R_NilValue));
  SEXP raw = Rf_eval(call, env);
  UNPROTECT(2);
  return raw;
}

// A plain list with the elements and attributes of the ALTREP list `x`,
// whose elements may be made on demand (R code only: may raise).
SEXP plain_list_copy(SEXP x) {
  R_xlen_t n = XLENGTH(x);
  SEXP copy = PROTECT(Rf_allocVector(VECSXP, n));
  for (R_xlen_t i = 0; i < n; ++i) SET_VECTOR_ELT(copy, i, VECTOR_ELT(x, i));
  SHALLOW_DUPLICATE_ATTRIB(copy, x);
  UNPROTECT(1);
  return copy;
}

// XLENGTH() runs an ALTREP class's Length method, which may raise.
uint64_t length_of(SEXP x) {
  return static_cast<uint64_t>(ALTREP(x) ? cpp11::safe[Rf_xlength](x) : XLENGTH(x));
}

SEXP plain_string_copy(SEXP x) {
  R_xlen_t n = XLENGTH(x);
  SEXP copy = PROTECT(Rf_allocVector(STRSXP, n));
  for (R_xlen_t i = 0; i < n; ++i) SET_STRING_ELT(copy, i, STRING_ELT(x, i));
  UNPROTECT(1);
  return copy;
}

class Describer {
 public:
  explicit Describer(EncodedObject& out) : out_(out) {}

  uint64_t describe(SEXP root) {
    struct Frame {
      SEXP x;
      bool expanded;
    };
    std::vector<Frame> stack{{root, false}};
    while (!stack.empty()) {
      Frame& top = stack.back();
      SEXP x = top.x;
      if (!top.expanded) {
        if (done_.count(x)) {
          stack.pop_back();
          continue;
        }
        if (!in_progress_.insert(x).second)
          throw Error(ErrorKind::InvalidArgument, "object refers to itself; cannot share a cycle");
        top.expanded = true;
        const Plan& plan = plan_for(x);
        for (auto it = plan.children.rbegin(); it != plan.children.rend(); ++it)
          stack.push_back({*it, false});
      } else {
        stack.pop_back();
        done_[x] = emit(x);
        in_progress_.erase(x);
      }
    }
    return done_.at(root);
  }

 private:
  // What a visited object becomes, decided once on first visit.
  struct Plan {
    NodeKind kind = NodeKind::Null;
    SEXP representation = R_NilValue;  // what is written (converted list, blob, plain copy)
    std::vector<SEXP> children;        // attribute values, then list elements
    std::vector<std::string> attribute_names;
    const StringSource* strings = nullptr;
  };

  SEXP keep(SEXP x) {
    out_.keep_alive.emplace_back(x);
    return x;
  }

  const Plan& plan_for(SEXP x) {
    Plan plan;
    plan.kind = Rf_isS4(x) ? NodeKind::Serialized : vector_kind(TYPEOF(x));
    plan.representation = x;

    switch (plan.kind) {
      case NodeKind::Serialized:
        plan.representation = keep(cpp11::unwind_protect([&] { return serialize_to_raw(x); }));
        break;
      case NodeKind::List:
        // Read below with XLENGTH() and VECTOR_ELT(), which cannot raise
        // on an ordinary list.
        if (TYPEOF(x) == LISTSXP)
          plan.representation = keep(cpp11::safe[Rf_PairToVectorList](x));
        else if (ALTREP(x))
          plan.representation = keep(cpp11::safe[plain_list_copy](x));
        break;
      case NodeKind::String:
        if (ViewHandle* view = view_handle(x)) {
          if (view->mapping->is_closed())
            throw Error(ErrorKind::Closed, "cannot share an object that was closed");
          SEXP cache = R_altrep_data2(x);
          if (view->cache_written && cache != R_NilValue) {
            plan.strings = add_source(std::make_unique<PlainStrings>(cache));
          } else {
            plan.strings = add_source(std::make_unique<RegionStrings>(view->node));
          }
        } else {
          if (ALTREP(x)) plan.representation = keep(cpp11::safe[plain_string_copy](x));
          plan.strings = add_source(std::make_unique<PlainStrings>(plan.representation));
        }
        break;
      default:
        break;
    }

    if (plan.kind != NodeKind::Serialized && plan.kind != NodeKind::Null) {
      for_each_attribute(plan.representation, [&](SEXP tag, SEXP value) {
        plan.attribute_names.emplace_back(CHAR(PRINTNAME(tag)));
        plan.children.push_back(value);
      });
    }
    if (plan.kind == NodeKind::List) {
      R_xlen_t n = XLENGTH(plan.representation);
      for (R_xlen_t i = 0; i < n; ++i) plan.children.push_back(VECTOR_ELT(plan.representation, i));
    }
    return plans_[x] = std::move(plan);
  }

  const StringSource* add_source(std::unique_ptr<StringSource> source) {
    out_.string_sources.push_back(std::move(source));
    return out_.string_sources.back().get();
  }

  uint64_t emit(SEXP x) {
    const Plan& plan = plans_.at(x);
    NodeSpec spec;
    spec.kind = plan.kind;
    SEXP rep = plan.representation;

    size_t child = 0;
    for (const std::string& name : plan.attribute_names)
      spec.attributes.emplace_back(name, done_.at(plan.children[child++]));

    switch (plan.kind) {
      case NodeKind::Null:
        break;
      case NodeKind::Logical:
      case NodeKind::Integer:
      case NodeKind::Double:
      case NodeKind::Complex:
      case NodeKind::Raw:
        spec.length = length_of(rep);
        if (!ALTREP(rep)) {
          spec.bytes = DATAPTR_RO(rep);
        } else {
          ViewHandle* view = view_handle(rep);
          if (view != nullptr && view->mapping->is_closed())
            throw Error(ErrorKind::Closed, "cannot share an object that was closed");
          // Dataptr_or_null runs the class's code, which may raise; it never
          // expands a vector, so a sequence stays compact until the writer
          // computes its elements into the region.
          spec.bytes = cpp11::safe[DATAPTR_OR_NULL](rep);
          if (spec.bytes == nullptr && spec.length > 0) {
            out_.vector_sources.push_back(std::make_unique<AltrepElements>(rep));
            spec.source = out_.vector_sources.back().get();
          }
        }
        break;
      case NodeKind::String:
        spec.length = length_of(rep);
        spec.strings = plan.strings;
        break;
      case NodeKind::List:
        if (TYPEOF(x) == LISTSXP) spec.flags |= format::kNodeFromPairlist;
        spec.length = static_cast<uint64_t>(XLENGTH(rep));
        for (; child < plan.children.size(); ++child)
          spec.children.push_back(done_.at(plan.children[child]));
        break;
      case NodeKind::Serialized:
        spec.bytes = RAW(rep);
        spec.byte_count = static_cast<uint64_t>(XLENGTH(rep));
        break;
    }
    out_.description.nodes.push_back(std::move(spec));
    plans_.erase(x);
    return out_.description.nodes.size() - 1;
  }

  EncodedObject& out_;
  std::unordered_map<SEXP, uint64_t> done_;
  std::unordered_set<SEXP> in_progress_;
  std::unordered_map<SEXP, Plan> plans_;
};

}  // namespace

void describe_object(SEXP x, EncodedObject& out) {
  Describer describer(out);
  out.description.root = describer.describe(x);
}

}  // namespace shmr::glue
