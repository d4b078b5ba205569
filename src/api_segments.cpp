// Segments: raw shared bytes, read and written only through these entry
// points (so the mapping can be released without leaving pointers behind).
// A segment is a writable region whose root is one Raw node.
#include <cpp11/list.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "api_support.h"
#include "core/error.h"
#include "core/store.h"
#include "r_api.h"

using namespace shmr;
using namespace shmr::glue;

namespace {

struct Segment {
  std::shared_ptr<MappedRegion> region;
  unsigned char* data = nullptr;
  uint64_t size = 0;
  bool readonly = false;
  bool is_protected = false;
  bool created = false;
};

void finalize_segment(SEXP pointer) {
  delete static_cast<Segment*>(R_ExternalPtrAddr(pointer));
  R_ClearExternalPtr(pointer);
}

SEXP wrap(std::unique_ptr<Segment> segment) {
  // The region's name goes in the tag, which serialization keeps while it
  // drops the pointer: a handle sent to another process can then say what
  // to open there.
  SEXP tag = PROTECT(cpp11::safe[Rf_mkString](segment->region->name().c_str()));
  SEXP pointer = PROTECT(cpp11::safe[R_MakeExternalPtr](nullptr, tag, R_NilValue));
  cpp11::safe[R_RegisterCFinalizerEx](pointer, finalize_segment, TRUE);
  R_SetExternalPtrAddr(pointer, segment.release());
  SEXP cls = PROTECT(cpp11::safe[Rf_mkString]("shmr_segment"));
  cpp11::safe[Rf_setAttrib](pointer, R_ClassSymbol, cls);
  UNPROTECT(3);
  return pointer;
}

// Closing keeps a handle's Segment (marked closed), and its finalizer runs
// only once the handle is unreachable: a handle without one was serialized
// (sent to a worker, saved) and read back in a process that never opened it.
std::string foreign_handle_message(SEXP x) {
  SEXP tag = R_ExternalPtrTag(x);
  const std::string how =
      TYPEOF(tag) == STRSXP && XLENGTH(tag) == 1 && STRING_ELT(tag, 0) != NA_STRING
          ? "segment_open(\"" + std::string(CHAR(STRING_ELT(tag, 0))) + "\")"
          : "segment_open() and its name or path";
  return "this segment handle comes from another R process (a handle is valid only in the "
         "process that created or opened it); open the segment here with " + how;
}

Segment& segment_of(SEXP x) {
  if (TYPEOF(x) != EXTPTRSXP || !Rf_inherits(x, "shmr_segment"))
    throw Error(ErrorKind::InvalidArgument, "not a segment (see segment_create())");
  auto* segment = static_cast<Segment*>(R_ExternalPtrAddr(x));
  if (segment == nullptr) throw Error(ErrorKind::Closed, foreign_handle_message(x));
  if (segment->region->is_closed())
    throw Error(ErrorKind::Closed, "the segment was closed");
  return *segment;
}

void attach_root(Segment& segment) {
  NodeView root = segment.region->reader().node(segment.region->reader().root());
  if (root.kind() != format::NodeKind::Raw)
    throw Error(ErrorKind::InvalidArgument,
                "region '" + segment.region->name() + "' holds an object, not a segment");
  segment.data = static_cast<unsigned char*>(const_cast<void*>(root.data()));
  segment.size = root.length();
}

// A byte count or offset as a user would write it: 10, 9007199254740992
// (2^53, in full: "%g" would round it), 1e+20, Inf.
std::string byte_figure(double x) {
  char text[32];
  std::snprintf(text, sizeof text, x == std::floor(x) && x < 18446744073709551616.0 ? "%.0f" : "%g", x);
  return std::isinf(x) ? "Inf" : text;
}

// offset + count must lie within the segment, with overflow-safe checks.
void check_range(const Segment& segment, double offset, double count, const char* what) {
  if (ISNAN(offset) || offset < 0 || offset != std::floor(offset))
    throw Error(ErrorKind::InvalidArgument, "offset must be a whole number >= 0");
  const double size = static_cast<double>(segment.size);
  if (offset > size || count > size - offset)
    throw Error(ErrorKind::InvalidArgument,
                std::string(what) + " of " + byte_figure(count) + " bytes at offset " +
                    byte_figure(offset) + " is outside the segment of " +
                    std::to_string(segment.size) + " bytes");
  // Both fit in the segment now, so the integer check below is exact.
  uint64_t at = static_cast<uint64_t>(offset);
  uint64_t n = static_cast<uint64_t>(count);
  if (at > segment.size || n > segment.size - at)
    throw Error(ErrorKind::InvalidArgument,
                std::string(what) + " of " + std::to_string(n) + " bytes at offset " +
                    std::to_string(at) + " is outside the segment of " +
                    std::to_string(segment.size) + " bytes");
}

}  // namespace

extern "C" SEXP shmr_segment_create(SEXP size, SEXP options) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    double bytes = as_real(size);
    // 2^53: the largest size a double holds exactly, far beyond any memory.
    if (!ISNAN(bytes) && bytes > 9007199254740992.0)
      throw Error(ErrorKind::InvalidArgument, "size must be at most 2^53 bytes");
    if (ISNAN(bytes) || bytes < 1 || bytes != static_cast<double>(static_cast<uint64_t>(bytes)))
      throw Error(ErrorKind::InvalidArgument, "size must be a whole number of bytes >= 1");
    RegionDescription description;
    NodeSpec raw;
    raw.kind = format::NodeKind::Raw;
    raw.length = static_cast<uint64_t>(bytes);
    raw.zero_filled = true;
    description.nodes.push_back(raw);
    description.original_class = "segment";

    CreateOptions create = create_options(options);
    create.writable = true;

    auto segment = std::make_unique<Segment>();
    segment->region = create_region(description, create);
    segment->created = true;
    attach_root(*segment);
    return wrap(std::move(segment));
  });
  SHMR_END
}

extern "C" SEXP shmr_segment_open(SEXP name, SEXP readonly) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    const bool read_only = as_logical(readonly) != FALSE;
    std::string region = region_name_for(as_string(name));
    auto segment = std::make_unique<Segment>();
    segment->readonly = read_only;
    segment->region = open_mapped_region(
        shm_directory(), region, segment->readonly ? Access::SharedReadOnly : Access::SharedWritable);
    if (!segment->readonly &&
        (segment->region->reader().header().flags & format::kFlagReadonly) != 0)
      throw Error(ErrorKind::InvalidArgument,
                  "region '" + region + "' is read-only; open it with readonly = TRUE");
    attach_root(*segment);
    return wrap(std::move(segment));
  });
  SHMR_END
}

extern "C" SEXP shmr_segment_write(SEXP seg, SEXP data, SEXP offset) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    Segment& segment = segment_of(seg);
    if (segment.readonly) throw Error(ErrorKind::InvalidArgument, "the segment was opened read-only");
    if (segment.is_protected)
      throw Error(ErrorKind::InvalidArgument, "the segment is protected (segment_protect())");
    double width = 0;
    switch (TYPEOF(data)) {
      case RAWSXP:
        width = 1;
        break;
      case LGLSXP:
      case INTSXP:
        width = 4;
        break;
      case REALSXP:
        width = 8;
        break;
      default:
        throw Error(ErrorKind::InvalidArgument,
                    "data must be a raw, logical, integer or double vector");
    }
    // An ALTREP vector (a shared one, a sequence) runs its class's code for
    // its length and data, which may raise.
    const bool altrep = ALTREP(data);
    const double count = width * static_cast<double>(altrep ? cpp11::safe[Rf_xlength](data)
                                                            : XLENGTH(data));
    const double at = as_real(offset);
    check_range(segment, at, count, "a write");
    if (count > 0) {
      const void* source = altrep ? cpp11::safe[DATAPTR_RO](data) : DATAPTR_RO(data);
      std::memcpy(segment.data + static_cast<uint64_t>(at), source, static_cast<size_t>(count));
    }
    return Rf_ScalarReal(count);
  });
  SHMR_END
}

extern "C" SEXP shmr_segment_read(SEXP seg, SEXP offset, SEXP size) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    Segment& segment = segment_of(seg);
    double at = as_real(offset);
    // Without a size: to the end (an offset past the end fails the range check).
    double count = Rf_isNull(size) ? std::max(0.0, static_cast<double>(segment.size) - at)
                                   : as_real(size);
    if (ISNAN(count) || count < 0) throw Error(ErrorKind::InvalidArgument, "size must be >= 0");
    check_range(segment, at, count, "a read");
    SEXP out = cpp11::safe[Rf_allocVector](RAWSXP, static_cast<R_xlen_t>(count));
    if (count > 0) std::memcpy(RAW(out), segment.data + static_cast<uint64_t>(at), static_cast<size_t>(count));
    return out;
  });
  SHMR_END
}

extern "C" SEXP shmr_segment_protect(SEXP seg) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    Segment& segment = segment_of(seg);
    segment.region->protect();
    segment.is_protected = true;
    return R_NilValue;
  });
  SHMR_END
}

extern "C" SEXP shmr_segment_info(SEXP seg) {
  SHMR_BEGIN
  using namespace cpp11::literals;
  if (TYPEOF(seg) != EXTPTRSXP || !Rf_inherits(seg, "shmr_segment"))
    throw std::runtime_error("shmr: not a segment (see segment_create())");
  auto* segment = static_cast<Segment*>(R_ExternalPtrAddr(seg));
  if (segment == nullptr) throw std::runtime_error("shmr: " + foreign_handle_message(seg));
  const MappedRegion& region = *segment->region;
  return cpp11::writable::list({
      "name"_nm = region.name(),
      "size"_nm = static_cast<double>(segment->size),
      "backing"_nm = backing_name(region.location().backing),
      "path"_nm = region.location().data_path(),
      "readonly"_nm = segment->readonly,
      "protected"_nm = segment->is_protected,
      "owner"_nm = segment->created,
      "closed"_nm = region.is_closed(),
  });
  SHMR_END
}

extern "C" SEXP shmr_segment_close(SEXP seg, SEXP unlink) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    if (TYPEOF(seg) != EXTPTRSXP || !Rf_inherits(seg, "shmr_segment"))
      throw Error(ErrorKind::InvalidArgument, "not a segment (see segment_create())");
    auto* segment = static_cast<Segment*>(R_ExternalPtrAddr(seg));
    if (segment == nullptr || segment->region->is_closed()) return Rf_ScalarLogical(FALSE);
    // Only the handle that created a segment speaks for its creator.
    int remove = as_logical(unlink);
    Removal removal = remove == TRUE                 ? Removal::Remove
                      : !segment->created            ? Removal::Leave
                      : remove == FALSE              ? Removal::Keep
                                                     : Removal::AsOwner;
    segment->region->close(removal);
    return Rf_ScalarLogical(TRUE);
  });
  SHMR_END
}

// Passes an access-pattern hint for the segment's pages to the kernel
// (madvise); TRUE when the kernel took it.
extern "C" SEXP shmr_segment_advise(SEXP seg, SEXP advice) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    Segment& segment = segment_of(seg);
    const int flag = madvise_flag(as_string(advice));
    const MemoryMap& map = segment.region->map();
    const bool taken = ::madvise(map.data(), map.size(), flag) == 0;
    return cpp11::safe[Rf_ScalarLogical](taken);
  });
  SHMR_END
}
