// .Call entry points for several machines: this host's identity, the fetch
// lock, building a replica from chunks, the keeper's replicas, what the
// region server reads, and the remote-mode switches (remote_glue.h).
#include <cpp11/doubles.hpp>
#include <cpp11/list.hpp>
#include <cpp11/strings.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api_support.h"
#include "core/names.h"
#include "core/origin.h"
#include "core/process.h"
#include "core/replica.h"
#include "core/sha256.h"
#include "core/store.h"
#include "r_api.h"
#include "remote_glue.h"

using namespace shmr;
using namespace shmr::glue;

namespace shmr::glue::remote {

int& scope_depth() {
  static int depth = 0;
  return depth;
}

namespace {
std::map<std::string, std::string>& scope_origins() {
  static std::map<std::string, std::string> table;
  return table;
}
}  // namespace

std::optional<std::string> origin_in_scope(const std::string& key) {
  if (scope_depth() == 0) return std::nullopt;
  auto found = scope_origins().find(key);
  if (found == scope_origins().end()) return std::nullopt;
  return found->second;
}

void remember_origin_in_scope(const std::string& key, const std::string& origin) {
  if (scope_depth() > 0) scope_origins()[key] = origin;
}

void forget_origins_in_scope() { scope_origins().clear(); }

bool& peer_is_remote() {
  static bool peer = false;
  return peer;
}

std::string local_host() {
  static std::string directory, host;
  std::string now = shm_directory();
  if (host.empty() || now != directory) {
    host = host_identity(now);
    directory = now;
  }
  return host;
}

namespace {
std::mutex origins_mutex;
std::map<std::string, std::string>& origins() {
  static std::map<std::string, std::string> table;
  return table;
}
}  // namespace

std::string origin_key(const std::string& name, int64_t pid, int64_t created_ms) {
  return name + "/" + std::to_string(pid) + "/" + std::to_string(created_ms);
}

void record_origin(const std::string& key, const std::string& origin) {
  std::lock_guard<std::mutex> lock(origins_mutex);
  origins()[key] = origin;
}

bool has_recorded_origins() {
  std::lock_guard<std::mutex> lock(origins_mutex);
  return !origins().empty();
}

std::optional<std::string> recorded_origin(const std::string& key) {
  std::lock_guard<std::mutex> lock(origins_mutex);
  auto found = origins().find(key);
  if (found == origins().end()) return std::nullopt;
  return found->second;
}

}  // namespace shmr::glue::remote

namespace {

template <typename T>
void delete_pointer(SEXP p) {
  delete static_cast<T*>(R_ExternalPtrAddr(p));
  R_ClearExternalPtr(p);
}

template <typename T>
SEXP wrap_pointer(T* object) {
  SEXP p = PROTECT(R_MakeExternalPtr(object, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(p, delete_pointer<T>, TRUE);
  UNPROTECT(1);
  return p;
}

template <typename T>
T* pointer_of(SEXP p, const char* what) {
  if (TYPEOF(p) != EXTPTRSXP || R_ExternalPtrAddr(p) == nullptr)
    throw std::runtime_error(std::string("shmr: ") + what + " is no longer open");
  return static_cast<T*>(R_ExternalPtrAddr(p));
}

template <typename T>
void delete_now(SEXP p) {
  if (TYPEOF(p) != EXTPTRSXP) return;
  delete static_cast<T*>(R_ExternalPtrAddr(p));
  R_ClearExternalPtr(p);
}

// The body of the entry points that close a handle before its finalizer would.
template <typename T>
SEXP release_handle(SEXP p) {
  SHMR_BEGIN
  delete_now<T>(p);
  return R_NilValue;
  SHMR_END
}

RegionIdentity identity_from(SEXP host, SEXP size, SEXP pid, SEXP created) {
  RegionIdentity id;
  id.host = as_string(host);
  id.size = static_cast<uint64_t>(Rf_asReal(size));
  id.creator_pid = static_cast<int64_t>(Rf_asReal(pid));
  id.created_unix_ms = static_cast<int64_t>(Rf_asReal(created));
  if (!is_valid_host_identity(id.host) || id.size == 0)
    throw std::runtime_error("shmr: invalid region identity");
  return id;
}

// A region the region server reads, mapped read-only in the server; gone
// once its name no longer leads to the file that was mapped.
struct ServedRegion {
  std::shared_ptr<MappedRegion> region;
  bool gone() const {
    return where_name_leads(region->location(), region->stamp()) != NameLeads::Here;
  }
};

}  // namespace

extern "C" SEXP shmr_host_identity() {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP { return cpp11::as_sexp(remote::local_host()); });
  SHMR_END
}

// Enters (TRUE) or leaves (FALSE) a remote-mode scope; returns the depth.
extern "C" SEXP shmr_remote_scope(SEXP enter) {
  SHMR_BEGIN
  int& depth = remote::scope_depth();
  remote::forget_origins_in_scope();
  if (Rf_asLogical(enter) == TRUE) {
    ++depth;
  } else if (depth > 0) {
    --depth;
  }
  return Rf_ScalarInteger(depth);
  SHMR_END
}

// With TRUE or FALSE sets the flag; returns its value.
extern "C" SEXP shmr_remote_peer(SEXP value) {
  SHMR_BEGIN
  int flag = TYPEOF(value) == LGLSXP && XLENGTH(value) == 1 ? LOGICAL(value)[0] : NA_LOGICAL;
  if (flag != NA_LOGICAL) remote::peer_is_remote() = flag == TRUE;
  return Rf_ScalarLogical(remote::peer_is_remote());
  SHMR_END
}

// Identity and access of region `name` on this host, for exporting it.
extern "C" SEXP shmr_region_identity(SEXP name) {
  SHMR_BEGIN
  using namespace cpp11::literals;
  return with_messages([&]() -> SEXP {
    auto region = open_mapped_region(shm_directory(), region_name_for(as_string(name)),
                                     Access::SharedReadOnly);
    const format::RegionHeader& h = region->reader().header();
    return cpp11::writable::list({
        "size"_nm = static_cast<double>(h.total_size),
        "creator_pid"_nm = static_cast<double>(h.creator_pid),
        "created"_nm = static_cast<double>(h.created_unix_ms),
        "readonly"_nm = (h.flags & format::kFlagReadonly) != 0,
        "replica"_nm = region->reader().is_replica(),
        "format_version"_nm = static_cast<int>(h.format_version),
    });
  });
  SHMR_END
}

// Parses an origin string: a list of its fields, or NULL when malformed.
extern "C" SEXP shmr_parse_origin(SEXP text) {
  SHMR_BEGIN
  using namespace cpp11::literals;
  auto origin = parse_origin(as_string(text));
  if (!origin) return R_NilValue;
  return cpp11::writable::list({
      "address"_nm = origin->address,
      "token"_nm = origin->token,
      "fingerprint"_nm = origin->fingerprint,
      "host"_nm = origin->identity.host,
      "size"_nm = static_cast<double>(origin->identity.size),
      "creator_pid"_nm = static_cast<double>(origin->identity.creator_pid),
      "created"_nm = static_cast<double>(origin->identity.created_unix_ms),
      "writable"_nm = origin->writable,
  });
  SHMR_END
}

extern "C" SEXP shmr_format_origin(SEXP address, SEXP token, SEXP fingerprint, SEXP host,
                                   SEXP size, SEXP pid, SEXP created, SEXP writable) {
  SHMR_BEGIN
  RemoteOrigin origin;
  origin.address = as_string(address);
  origin.token = as_string(token);
  origin.fingerprint = as_string(fingerprint);
  origin.identity = identity_from(host, size, pid, created);
  origin.writable = Rf_asLogical(writable) == TRUE;
  std::string text = format_origin(origin);
  if (!parse_origin(text)) throw std::runtime_error("shmr: invalid origin for address " + origin.address);
  return cpp11::as_sexp(text);
  SHMR_END
}

// 22 base-62 characters from the kernel's random source.
extern "C" SEXP shmr_random_token() {
  SHMR_BEGIN
  return cpp11::as_sexp(names::generate().substr(std::strlen(names::kPrefix)));
  SHMR_END
}

extern "C" SEXP shmr_sha256(SEXP text) {
  SHMR_BEGIN
  if (TYPEOF(text) == RAWSXP)
    return cpp11::as_sexp(sha256::hex_digest(RAW(text), static_cast<size_t>(XLENGTH(text))));
  std::string s = as_string(text);
  return cpp11::as_sexp(sha256::hex_digest(s.data(), s.size()));
  SHMR_END
}

// This process's PID and start ticks, as numbers (the region server
// watches its owner with them).
extern "C" SEXP shmr_process_start() {
  SHMR_BEGIN
  process::Identity self = process::current();
  return cpp11::writable::doubles({static_cast<double>(self.pid), static_cast<double>(self.start_ticks)});
  SHMR_END
}

// The fetch lock of region `name`, or NULL when another process holds it.
extern "C" SEXP shmr_fetch_lock(SEXP name) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    auto lock = FetchLock::try_acquire(shm_directory(), region_name_for(as_string(name)));
    if (!lock) return R_NilValue;
    return cpp11::safe[wrap_pointer<FetchLock>](new FetchLock(std::move(*lock)));
  });
  SHMR_END
}

extern "C" SEXP shmr_fetch_unlock(SEXP lock) { return release_handle<FetchLock>(lock); }

// "absent", "origin" or "replica"; an error when another region has the name.
extern "C" SEXP shmr_local_copy(SEXP name, SEXP host, SEXP size, SEXP pid, SEXP created) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    LocalCopy copy = find_local_copy(shm_directory(), region_name_for(as_string(name)),
                                     identity_from(host, size, pid, created), remote::local_host());
    switch (copy) {
      case LocalCopy::Absent: return cpp11::as_sexp("absent");
      case LocalCopy::Origin: return cpp11::as_sexp("origin");
      case LocalCopy::Replica: return cpp11::as_sexp("replica");
      case LocalCopy::Superseded: break;
    }
    return cpp11::as_sexp("superseded");
  });
  SHMR_END
}

// Removes this host's copy of an earlier region of that name (under the
// fetch lock); returns whether one was removed.
extern "C" SEXP shmr_remove_superseded_copy(SEXP name, SEXP host, SEXP size, SEXP pid, SEXP created) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    return cpp11::as_sexp(remove_superseded_copy(shm_directory(), region_name_for(as_string(name)),
                                                 identity_from(host, size, pid, created),
                                                 remote::local_host()));
  });
  SHMR_END
}

// `fallback_directory` takes the copy when the shm directory has no room for
// it (`shm_capacity` as for share()).
extern "C" SEXP shmr_replica_begin(SEXP name, SEXP host, SEXP size, SEXP pid, SEXP created,
                                   SEXP fallback_directory, SEXP shm_capacity) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    auto* builder = new ReplicaBuilder(
        shm_directory(), region_name_for(as_string(name)), identity_from(host, size, pid, created),
        as_string(fallback_directory),
        shm_capacity_from(shm_capacity));
    return cpp11::safe[wrap_pointer<ReplicaBuilder>](builder);
  });
  SHMR_END
}

// Writes the bytes of `chunk` after its first `skip` bytes at `offset`.
extern "C" SEXP shmr_replica_write(SEXP builder, SEXP offset, SEXP chunk, SEXP skip) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    if (TYPEOF(chunk) != RAWSXP) throw Error(ErrorKind::InvalidArgument, "a chunk must be a raw vector");
    auto* b = pointer_of<ReplicaBuilder>(builder, "the copy being built");
    uint64_t from = static_cast<uint64_t>(Rf_asReal(skip));
    uint64_t n = static_cast<uint64_t>(XLENGTH(chunk));
    if (from > n) throw Error(ErrorKind::InvalidArgument, "skip beyond the chunk");
    b->write(static_cast<uint64_t>(Rf_asReal(offset)), RAW(chunk) + from, n - from);
    return R_NilValue;
  });
  SHMR_END
}

// Validates, publishes, and keeps the replica in this process.
extern "C" SEXP shmr_replica_publish(SEXP builder, SEXP name) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    pointer_of<ReplicaBuilder>(builder, "the copy being built")->publish();
    delete_now<ReplicaBuilder>(builder);
    keep_replica(shm_directory(), region_name_for(as_string(name)));
    return R_NilValue;
  });
  SHMR_END
}

extern "C" SEXP shmr_replica_abort(SEXP builder) { return release_handle<ReplicaBuilder>(builder); }

// Releases the replicas this process keeps among `names` (all for NULL).
extern "C" SEXP shmr_release_replicas(SEXP names) {
  SHMR_BEGIN
  std::vector<std::string> wanted;
  if (TYPEOF(names) == STRSXP)
    for (R_xlen_t i = 0; i < XLENGTH(names); ++i)
      if (STRING_ELT(names, i) != NA_STRING) wanted.push_back(region_name_for(CHAR(STRING_ELT(names, i))));
  if (TYPEOF(names) == STRSXP && wanted.empty()) return cpp11::writable::strings();
  auto released = release_replicas(wanted);
  cpp11::writable::strings out;
  for (const auto& n : released) out.push_back(n);
  return out;
  SHMR_END
}

// The region server's read-only mapping of an exported region.
extern "C" SEXP shmr_serve_open(SEXP name) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    std::string region = region_name_for(as_string(name));
    auto served = std::make_unique<ServedRegion>();
    served->region = open_mapped_region(shm_directory(), region, Access::SharedReadOnly);
    if (served->gone()) throw Error(ErrorKind::NotFound, "region '" + region + "' is gone");
    return cpp11::safe[wrap_pointer<ServedRegion>](served.release());
  });
  SHMR_END
}

// Bytes [offset, offset + length) of a served region, after one status byte
// (0); NULL once the region is gone. Written into `buffer` when it is a raw
// vector of that length (the server's own, sent and no longer read), else
// into a new one.
extern "C" SEXP shmr_serve_chunk(SEXP handle, SEXP offset, SEXP length, SEXP buffer) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    auto* served = pointer_of<ServedRegion>(handle, "the served region");
    if (served->gone()) return R_NilValue;
    double from = Rf_asReal(offset), n = Rf_asReal(length);
    uint64_t size = served->region->map().size();
    if (ISNAN(from) || ISNAN(n) || from < 0 || n < 0 || from > static_cast<double>(size) ||
        n > static_cast<double>(size) - from)
      throw Error(ErrorKind::InvalidArgument, "chunk outside the region");
    uint64_t at = static_cast<uint64_t>(from), count = static_cast<uint64_t>(n);
    const bool reusable = TYPEOF(buffer) == RAWSXP && static_cast<uint64_t>(XLENGTH(buffer)) == count + 1;
    SEXP out = reusable ? buffer : cpp11::safe[Rf_allocVector](RAWSXP, static_cast<R_xlen_t>(count + 1));
    RAW(out)[0] = 0;
    std::memcpy(RAW(out) + 1, static_cast<const unsigned char*>(served->region->map().data()) + at, count);
    return out;
  });
  SHMR_END
}

extern "C" SEXP shmr_serve_close(SEXP handle) { return release_handle<ServedRegion>(handle); }

// TRUE once the served region's name no longer leads to it (its owner
// dropped or removed it): the server then lets its mapping go.
extern "C" SEXP shmr_serve_gone(SEXP handle) {
  SHMR_BEGIN
  return with_messages([&]() -> SEXP {
    auto* served = pointer_of<ServedRegion>(handle, "the served region");
    return cpp11::safe[Rf_ScalarLogical](served->gone());
  });
  SHMR_END
}
