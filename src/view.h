// An ALTREP view: an R vector whose data is one node of a mapped region.
// data1 of every view class is an external pointer to a ViewHandle.
#pragma once

#include "r_api.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/names.h"
#include "core/reader.h"
#include "mapping.h"
#include "r_boundary.h"

namespace shmr::glue {

// Advanced whenever a view object is made or a view starts reading other
// memory (or its handle goes). A cache of "view -> first element" filled
// under one generation is stale under the next: R may reuse a collected
// view's address for a new object, but making one advances the generation.
extern std::atomic<uint64_t> view_generation;
inline void views_changed() noexcept { view_generation.fetch_add(1, std::memory_order_relaxed); }
inline uint64_t current_view_generation() noexcept {
  return view_generation.load(std::memory_order_relaxed);
}

// What a copy R made of a writable share reads and writes (a view of a
// read-only region, or the writable share itself, is None).
enum class WritableCopy : unsigned char {
  None,
  Pending,   // reads the shared memory; undecided until R asks to write
  Shared,    // writes reach the shared memory (it is the share's new value)
  Private,   // an ordinary private copy, in memory R owns
};

struct ViewHandle;
inline uint64_t next_view_serial() noexcept {
  static uint64_t last = 0;  // R's main thread only, as every view
  return ++last;
}
// Every view of a writable region is known, so that the start of a write
// can find the objects that must keep their values (writable_copies.cpp).
// O(1) each.
void track_writable_view(ViewHandle& handle);
void untrack_writable_view(ViewHandle& handle) noexcept;

struct ViewHandle {
  std::shared_ptr<Mapping> mapping;
  NodeView node;
  // A slice covers elements [first, first + count) of a fixed-width node
  // (a column of a shared matrix); a whole view covers the node.
  uint64_t first = 0;
  uint64_t count = 0;
  // Set once R changed an element of a string view's materialised vector
  // (strings_written() finds that).
  bool cache_written = false;
  // Set once the view was found to hold private (written) pages: from then
  // on its node's value flags are not trusted.
  bool known_written = false;
  // The mapping's count of data pointers handed out (Mapping) when the
  // view was last found free of private pages: R writes only through such
  // pointers, so the page check runs again only once the count has moved.
  uint64_t clean_at_pointers = kNeverChecked;
  static constexpr uint64_t kNeverChecked = ~uint64_t{0};

  // String views: the strings made so far, inside the R vectors data2 holds
  // (R's collector never moves objects), so reading one costs no R call.
  bool strings_cached = false;                     // data2 is set up
  const SEXP* strings_full = nullptr;              // every element, once materialised
  // Set when R was first handed a writable pointer to strings_full, with a
  // digest of its elements then. R asks for one also just to read (order()
  // of a character vector does): only a different digest means a write.
  // (Writing through a character vector's data pointer bypasses R's write
  // barrier and is not in R's API; what is checked is that nothing did.)
  bool strings_pointer_given = false;
  uint64_t strings_fingerprint = 0;
  const SEXP* strings_entries = nullptr;           // dictionary layout: its entries
  const SEXP* const* strings_chunks = nullptr;     // packed layout: per chunk, or nullptr

  // A copy R made of a writable share (writable_copies.h): where it stands,
  // and the object it was copied from (compared by address only).
  WritableCopy writable_copy = WritableCopy::None;
  const void* copied_from = nullptr;
  // Never reused within the process, unlike an object's address: a copy
  // finds its source by it (0: none), which may be gone by then.
  const uint64_t serial = next_view_serial();
  uint64_t copied_from_serial = 0;
  // Set when a copy made from this view became the share's new value: this
  // one stands for the old value, and becomes a private copy of the
  // elements at its next use, before R writes them (writable_copies.h).
  bool snapshot_due = false;
  // A Pending copy that R only reads, decided so at its first writable
  // pointer and never asked again (writable_copies.cpp: Outcome::ReadsInPlace).
  bool reads_in_place = false;
  // Its position among the views of writable regions (writable_copies.cpp).
  size_t tracked_at = kUntracked;
  static constexpr size_t kUntracked = ~size_t{0};

  // Read directly by the per-element methods: true when they must go
  // open_view_handle()'s way instead of reading `begin`. It is the region's
  // closed flag, or a flag that is always true while a snapshot is due.
  const bool* slow_path = nullptr;

  ViewHandle(std::shared_ptr<Mapping> m, NodeView n)
      : mapping(std::move(m)), node(n), count(node.length()),
        slow_path(mapping->region().closed_flag()) {
    mapping->add_view(node.index());
    if (mapping->region().access() == Access::SharedWritable) track_writable_view(*this);
  }
  ~ViewHandle() {
    untrack_writable_view(*this);
    views_changed();
    mapping->remove_view(node.index(), data(), data_size());
  }

  // True when the view no longer reads (or must no longer read) the region's
  // elements: a private copy of a writable share, or one about to become one.
  bool holds_private_values() const noexcept {
    return writable_copy == WritableCopy::Private || snapshot_due;
  }

  bool is_slice() const noexcept { return first != 0 || count != node.length(); }
  uint64_t length() const noexcept { return count; }
  const void* data() const noexcept { return begin; }
  uint64_t data_size() const noexcept { return count * format::element_size(node.kind()); }

  // Makes the view read `data` (a private copy of its elements) from now on.
  void use_private_data(const void* data) noexcept {
    begin = data;
    views_changed();
  }

  void set_slice(uint64_t from, uint64_t n) noexcept {
    first = from;
    count = n;
    begin = static_cast<const unsigned char*>(node.data()) + first * format::element_size(node.kind());
    views_changed();
  }

  // The first element's address, kept by set_slice(): data() is on the hot
  // path, so it is not recomputed per call.
  const void* begin = node.data();
};

// Class handles, set by the per-family init functions.
void init_vector_view_classes(DllInfo* dll);
void init_string_view_class(DllInfo* dll);

// The values of a string view that R has written to (its materialised
// vector, which the region no longer describes), or R_NilValue.
SEXP string_view_written_values(SEXP x);

// True once R changed an element of a string view (not a string view:
// false). Digests the elements (strings_fingerprint), O(length), while a
// writable pointer R was handed may still be in use; no R call.
bool strings_written(ViewHandle& handle) noexcept;

// True when `x` is an ALTREP view made by shmr.
bool is_view(SEXP x);

// The handle of a view, or nullptr for anything else (never throws).
ViewHandle* view_handle(SEXP x);

// The object R's wrapper class wraps, or `x` itself when it is no wrapper.
// R wraps a large vector instead of copying it to give it other attributes
// (`structure(x, a = 1)`) or to write into it (a complex assignment keeps
// the wrapper when the write fails): such a wrapper still reads the view.
SEXP unwrapped(SEXP x);

// Makes a view of `node` (read through `mapping`). A fixed-width node that
// already has a view there, or whose pages were written there, gets a
// mapping of its own instead (mapping.h). May raise an R error (allocation,
// or the region gone when a new mapping is needed): call only inside
// cpp11::unwind_protect, from a frame that owns no C++ object. Fixed-width
// and String nodes only.
SEXP make_view(const std::shared_ptr<Mapping>& mapping, const NodeView& node);

// An ordinary vector holding the fixed-width node's data. May raise an R
// error (allocation).
SEXP data_copy(const NodeView& node);

// The handle of `x` inside a view class's own method, where `x` is known to
// be a view: no class lookup, since Elt methods run once per element.
inline ViewHandle* own_handle(SEXP x) {
  return static_cast<ViewHandle*>(R_ExternalPtrAddr(R_altrep_data1(x)));
}

// The handle of a usable view; raises an R error when the view was released
// or closed. Call only from a view class's method, from a frame that owns no
// C++ object.
ViewHandle& open_view_handle(SEXP x);

// A new view of the same node, independent of `handle`'s (mapping.h), or
// nullptr when the region can no longer be mapped.
SEXP fresh_view_of(const ViewHandle& handle);

// A view of elements [first, first + count) of the fixed-width view `x`,
// sharing its mapping, or nullptr when `x` is not such a view. May raise an R
// error (allocation): call only inside cpp11::unwind_protect.
SEXP make_slice(SEXP x, uint64_t first, uint64_t count);

// A slice of elements [first, first + count) of the view `handle` (relative
// to it), on a mapping where the node has no other view, so that writes to
// it stay its own; nullptr when no such mapping can be had. May raise an R
// error (allocation): call only from an ALTREP method or unwind_protect.
SEXP slice_on_own_mapping(ViewHandle& handle, uint64_t first, uint64_t count);

// True when the node's value flags (FORMAT.md 2.2) describe the view's
// values: a read-only view, open, that this process has not written to.
bool view_values_trusted(ViewHandle& handle);

// The ALTREP state of a shared list: a raw vector in the compact form of
// FORMAT.md section 4, with the field "made" when the region's name can be
// reused, "length" when `length` is given (the element count of an
// unnamed list, which an unavailable list keeps), and "origin" when
// `origin` is not empty (origin_for_sending()). May raise an R error
// (allocation).
SEXP list_state_of(const std::string& region, const names::RegionMade& made, uint64_t node,
                   std::optional<uint64_t> length, const char* origin = nullptr);

// The bytes of a state as R read it: the compact raw form, or the string
// "<region>:<node>" that earlier versions wrote. data is null for anything
// else. Never raises.
struct StateBytes {
  const unsigned char* data = nullptr;
  size_t size = 0;
  bool compact = false;
};
StateBytes state_bytes(SEXP state);

struct ListState {
  names::ViewState view;
  // Absent in states written before the field existed.
  std::optional<uint64_t> length;
  // Absent for a region of a generated name, and in earlier states.
  std::optional<names::RegionMade> made;
  // In remote mode (FORMAT.md 4), unparsed.
  std::optional<std::string> origin;
};
// Parses those untrusted bytes; nullopt when malformed, or when the state
// carries fields this build does not know (then copied to `unknown_fields`
// when given). Never throws.
std::optional<ListState> parse_list_state(const StateBytes& bytes,
                                          std::string* unknown_fields = nullptr);

// The compact state's field that carries the origin (FORMAT.md 4), in a
// view's state and in a list's.
inline constexpr const char* kOriginField = "origin";
// Room for an origin's text (at most 512 bytes, FORMAT.md 4) and a region's
// name.
inline constexpr size_t kOriginTextSize = 640;

// The origin field a shared object of `region` carries when serialized now:
// the one it arrived with from another host; else, in remote mode, its
// owner's region server's (asked of R once per region in a pool call's
// scope); else none (empty). Written into `origin` (kOriginTextSize bytes).
// May raise an R error: call from a frame that owns no C++ object.
void origin_for_sending(const MappedRegion& region, char* origin, size_t size);

// What an incoming state's origin field says, as plain data, so that it can
// be held across the R calls that fetch the region.
struct IncomingOrigin {
  bool remote;      // the state has an origin field
  bool other_host;  // of a region of another host
  bool copy_here;   // which, or a complete copy of it, is on this host now
  bool writable;
  char region[kOriginTextSize];
  char origin_text[kOriginTextSize];
  char origin_host[kOriginTextSize];
  uint64_t size;
  int64_t pid, created;
};
// Fills `in` from the untrusted origin text of region `region`'s state;
// throws InvalidArgument when it is malformed.
void read_incoming_origin(const std::string& region, const std::string& text, IncomingOrigin& in);
// For an origin of another host: makes its region available on this host
// (remote_obtain() fetches a copy unless one is here) and returns false; or
// returns true with the reason it cannot be (in `reason`). May run R code:
// call from a frame that owns no C++ object.
bool foreign_region_unavailable(const IncomingOrigin& in, char* reason, size_t size);
// Throws unless the mapped region is the one the origin names: the region
// itself on its own host, a copy of it elsewhere.
void check_origin_identity(const RegionReader& reader, const IncomingOrigin& in,
                           const std::string& name);
// Remembers the origin of an object from another host, which it then names
// wherever it is sent next.
void record_foreign_origin(const IncomingOrigin& in) noexcept;

// Used by the view classes' Serialized_state and Unserialize methods
// (view_state.cpp). The state is the compact state of FORMAT.md 4, with the
// origin as its field in remote mode; nullptr means "serialize the data".
SEXP view_serialized_state(const ViewHandle& handle);

// For its lifetime, each shared object serialized by name (a vector, string
// or list view) adds its mapping to `into`: what share() keeps for a node
// it stores serialized (EncodedObject::named_mappings). Nests.
class NamedMappingsCollector {
 public:
  explicit NamedMappingsCollector(std::vector<std::shared_ptr<Mapping>>& into) noexcept;
  ~NamedMappingsCollector();
  NamedMappingsCollector(const NamedMappingsCollector&) = delete;
  NamedMappingsCollector& operator=(const NamedMappingsCollector&) = delete;

 private:
  std::vector<std::shared_ptr<Mapping>>* outer_;
};
// Called where a view's state names its region; may throw std::bad_alloc.
void note_named_mapping(const std::shared_ptr<Mapping>& mapping);
// `cls` is the class R found in the stream (the Unserialize method's first
// argument); the state must name a node of that class. Never raises an error
// for a region that cannot be had: the result is then an unavailable object.
SEXP view_from_serialized_state(SEXP cls, SEXP state);

// An unavailable object: what unserializing a view gives when its region
// cannot be had (absent, unreachable, refused). Its data1 is an external
// pointer with no handle whose protected value holds the region, the reason
// and the original state. Any use raises a classed R error; serializing it
// again writes the original state.
bool is_unavailable(SEXP x);
// An unavailable object of the class `cls` (a view class, or the list
// class); warns once per region and process. May raise an R error (the
// warning, allocation): call from a frame that owns no C++ object.
SEXP make_unavailable_object(R_altrep_class_t cls, SEXP state, const char* region,
                             const char* reason);
// Makes the unavailable view `x` (not a list) a view of its region when
// the region can be mapped now, as the state it was unserialized from
// names it: the cause (descriptors or address space short) may be gone.
// True then; false, and `x` unchanged, when it still cannot (the region is
// gone, or is not that one any more), for a malformed state, and for
// another host's region with no copy here (fetching it anew at each use
// could wait on the network every time). Why it still cannot, when it
// tried, goes to `why`. Never warns, never raises, and allocates nothing in
// R: it runs where R reads a length.
bool revive_unavailable_view(SEXP x, ErrorMessage& why);
// For a Length method, the handle of a view `x` that has none: an
// unavailable object's once revived; nullptr (a length of 0) while mirai
// formats a task's error report (unavailable_read_for_mirai_report()) or
// for a released view; else the unavailable object's R error. Call from a
// frame that owns no C++ object.
ViewHandle* handle_for_length(SEXP x);
// A handle on `node` of `preferred`'s file for such a view (as a view made
// at unserialize would read), or nullptr when only a copy of its data could
// stand for it. Throws like mapping_for_view().
ViewHandle* handle_for_revived_view(const std::shared_ptr<Mapping>& preferred, const NodeView& node);
// Registers on `pointer`, an unavailable view's, the finalizer that deletes
// the handle revive_unavailable_view() may give it. May allocate.
void own_revived_handle(SEXP pointer);
// The region, reason and state of an object of one of shmr's classes made
// by make_unavailable_object(), or nullptr. Check the class first.
SEXP unavailable_info(SEXP x);
// Raises the classed error (shmr_region_unavailable), with the reason
// `why` when set (a later attempt's), else the one unserialize met. Call
// from a frame that owns no C++ object.
[[noreturn]] void raise_unavailable(SEXP x, const ErrorMessage& why = ErrorMessage{});
// True while mirai formats the report of a task's error: it deparses every
// call on the daemon's stack, and mirai_map() puts its arguments into those
// calls. An unavailable object that raised the task's error would raise
// again there, outside any handler, and the daemon would exit; instead it
// reads as empty (length 0, or NULL elements) to that report only. May
// allocate and run R code: call only where the object would otherwise raise.
bool unavailable_read_for_mirai_report();
SEXP unavailable_state(SEXP x);
// Adds to a "no shared region named ..." reason of an object that came by
// name (no origin) the likeliest cause on a daemon of another host: the
// owner did not turn on remote mode.
void add_remote_mode_hint(ErrorMessage& message) noexcept;

// Makes the view of the node `find(node)` finds, on the mapping it returns
// when a new view of the node may read that one (else on another mapping
// of the same file, or as a copy of its data when no other may be made);
// nullptr, with the message in `message`, when it throws. The
// mapping is held by an external pointer while the view is allocated, so an
// allocation error cannot leak it.
SEXP view_on_mapping(const std::function<std::shared_ptr<Mapping>(NodeView&)>& find,
                     ErrorMessage& message);

// True when writes through the view reach the region (a writable share).
bool view_writes_through(const ViewHandle& handle);

// True when this process wrote to the data of a view of a read-only region:
// its own pages (copy-on-write pages, a string view's changed elements) hold
// what the region does not, so the region's name no longer gives it back.
// The page check (a read of the kernel's page map, a cost per page of the
// view) runs only when R was handed a data pointer into the view's
// mapping since the last check found no written page.
bool view_holds_own_writes(ViewHandle& handle);

// True when the process holds private (copy-on-write) copies of any page of
// the view's data, i.e. it has written to it. Free unless R was ever handed
// a writable pointer into the view's mapping.
bool view_has_private_pages(const ViewHandle& handle);

}  // namespace shmr::glue
