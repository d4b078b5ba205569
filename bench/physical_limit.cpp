// physical_limit: this machine's physical limits for moving N bytes, the
// baseline that share() benchmarks are compared against. Standalone C++17.
//
// Build: g++ -O2 -std=c++17 -pthread -o build/physical_limit bench/physical_limit.cpp
// Usage: physical_limit SIZE_BYTES [REPEATS=5] [SHM_DIR=/dev/shm]
// Output (stdout, CSV): metric,case,size_bytes,value,unit; every value is the
// median over REPEATS runs; GB = 1e9 bytes.
//
// Ways of filling a fresh shm file of SIZE bytes from memory:
//   memcpy_fresh_shm ftruncate / fallocate / fallocate_populate: one thread
//     copies through a shared mapping (page faults during the copy, space
//     reserved up front, page tables filled up front);
//   memcpy_fresh_shm threads_populate: every core takes a part, pre-faults
//     it with MADV_POPULATE_WRITE (fallocate + MAP_POPULATE where the
//     kernel lacks it) and copies it; a row with unit "threads" says how
//     many;
//   write_fresh_shm pwrite: one thread, write() into the file (the kernel
//     copies into pages it allocates, nothing is mapped);
//   write_fresh_shm vmsplice: one thread, vmsplice() of the source into a
//     pipe and splice() into the file (the kernel copies page by page
//     without reading the source through its user address);
//   write_fresh_shm vmsplice_after_free (sizes up to 64 MB): the same, each
//     right after 64 MB of memory were written and unmapped, the state a
//     full garbage collection leaves a process in.
// And reading a populated shm file: read_seq_shm, every page of a fresh
// mapping, then again (warm); read_seq_shm populate / after_populate: a
// fresh mapping whose page tables MADV_POPULATE_READ fills first, then its
// first read (absent where the kernel lacks the advice), which shows how
// much of a first read's cost no page-table work up front removes;
// read_fault_shm, one byte of a fresh mapping (the fault a first element
// access takes), in microseconds.
// The write_fresh_shm cases copy from a source no kernel call has read yet,
// as share() copies a vector R has just written (a fresh buffer for every
// repeat after the first): on some virtual machines the kernel's first read
// of a user page costs a fault, which a reused buffer would hide.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL
#endif

namespace {

// Errors are thrown rather than exit()ed so destructors unlink every file.
[[noreturn]] void fail(const std::string& what, int err = errno) {
  throw std::runtime_error(what + ": " + std::strerror(err));
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A uniquely named file in SHM_DIR, unlinked and closed on scope exit.
struct ShmFile {
  int fd = -1;
  std::string path;
  ShmFile(const std::string& dir) {
    static unsigned counter = 0;
    path = dir + "/.shmr_bench_" + std::to_string(getpid()) + "_" +
           std::to_string(counter++);
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail("open " + path);
  }
  ShmFile(const ShmFile&) = delete;
  ShmFile& operator=(const ShmFile&) = delete;
  ~ShmFile() {
    if (unlink(path.c_str()) != 0)
      std::fprintf(stderr, "warning: unlink %s: %s\n", path.c_str(), std::strerror(errno));
    close(fd);
  }
};

struct Mapping {
  void* p = MAP_FAILED;
  size_t len = 0;
  Mapping(size_t n, int prot, int flags, int fd) : len(n) {
    p = mmap(nullptr, n, prot, flags, fd, 0);
    if (p == MAP_FAILED) fail("mmap");
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (munmap(p, len) != 0) std::fprintf(stderr, "warning: munmap: %s\n", std::strerror(errno));
  }
  unsigned char* bytes() const { return static_cast<unsigned char*>(p); }
};

// What the vmsplice_after_free case writes and frees before each fill.
constexpr size_t kFreedBytes = size_t{64} << 20;

// Anonymous private memory: page-aligned like the shm mappings, and written
// through once so later measurements never see zero-page or fault effects.
struct Buffer : Mapping {
  explicit Buffer(size_t n) : Mapping(n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1) {}
};

// Non-zero, non-uniform content so no zero-page or dedup shortcut applies.
void fill(unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>((i * 131u + 7u) | 1u);
}

// Four accumulators keep the loop bandwidth-bound rather than add-latency-bound.
uint64_t sum_words(const unsigned char* p, size_t n) {
  auto word = [p](size_t i) {  // 8-byte memcpy: aliasing-safe, one plain load
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    return w;
  };
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a += word(i); b += word(i + 8); c += word(i + 16); d += word(i + 24);
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}
volatile uint64_t g_sink;  // the sums are stored here so they cannot be elided

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

enum class Alloc { Ftruncate, Fallocate, FallocatePopulate };

// One fresh-file copy; timed from open() to the end of memcpy (munmap and
// unlink happen in destructors, after the clock has stopped).
double fresh_shm_copy(const std::string& dir, const unsigned char* src, size_t n, Alloc how) {
  auto t0 = Clock::now();
  ShmFile f(dir);
  if (how == Alloc::Ftruncate) {
    if (ftruncate(f.fd, static_cast<off_t>(n)) != 0) fail("ftruncate " + f.path);
  } else {
    int rc = posix_fallocate(f.fd, 0, static_cast<off_t>(n));  // returns the error, not errno
    if (rc != 0) fail("posix_fallocate " + f.path, rc);
  }
  int flags = MAP_SHARED | (how == Alloc::FallocatePopulate ? MAP_POPULATE : 0);
  Mapping m(n, PROT_READ | PROT_WRITE, flags, f.fd);
  std::memcpy(m.p, src, n);
  return seconds_since(t0);
}

// One fresh-file copy by `threads` threads, each pre-faulting and copying
// its own page-aligned part.
double fresh_shm_copy_threads(const std::string& dir, const unsigned char* src, size_t n,
                              unsigned threads) {
  auto t0 = Clock::now();
  ShmFile f(dir);
  if (ftruncate(f.fd, static_cast<off_t>(n)) != 0) fail("ftruncate " + f.path);
  Mapping m(n, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd);
  // Without MADV_POPULATE_WRITE (an unknown advice is EINVAL, whatever the
  // length) a fault past a full tmpfs would be a SIGBUS: reserve the space
  // first; the threads then fault their parts in as they copy.
  if (madvise(m.p, 0, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
    int rc = posix_fallocate(f.fd, 0, static_cast<off_t>(n));
    if (rc != 0) fail("posix_fallocate " + f.path, rc);
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t part = (n / threads + page - 1) / page * page;
  std::vector<std::thread> workers;
  std::vector<int> errors(threads, 0);
  for (unsigned k = 0; k < threads; ++k) {
    size_t from = k * part;
    if (from >= n) break;
    size_t len = std::min(part, n - from);
    workers.emplace_back([&, k, from, len] {
      if (madvise(m.bytes() + from, len, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) {
        errors[k] = errno;
        return;
      }
      std::memcpy(m.bytes() + from, src + from, len);
    });
  }
  for (auto& w : workers) w.join();
  for (int e : errors)
    if (e != 0) fail("MADV_POPULATE_WRITE " + f.path, e);
  return seconds_since(t0);
}

// One fresh-file write(): the kernel copies into pages it allocates.
double fresh_shm_write(const std::string& dir, const unsigned char* src, size_t n) {
  auto t0 = Clock::now();
  ShmFile f(dir);
  if (ftruncate(f.fd, static_cast<off_t>(n)) != 0) fail("ftruncate " + f.path);
  for (size_t done = 0; done < n;) {
    ssize_t w = pwrite(f.fd, src + done, std::min<size_t>(n - done, size_t{1} << 30),
                       static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("pwrite " + f.path, w < 0 ? errno : ENOSPC);
    done += static_cast<size_t>(w);
  }
  return seconds_since(t0);
}

// One fresh-file copy by vmsplice() + splice() through a 1 MB pipe.
double fresh_shm_splice(const std::string& dir, const unsigned char* src, size_t n) {
  auto t0 = Clock::now();
  ShmFile f(dir);
  if (ftruncate(f.fd, static_cast<off_t>(n)) != 0) fail("ftruncate " + f.path);
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) fail("pipe2");
  struct Ends {
    int* e;
    ~Ends() { close(e[0]); close(e[1]); }
  } guard{ends};
  int capacity = fcntl(ends[1], F_SETPIPE_SZ, 1 << 20);
  if (capacity <= 0) capacity = 65536;
  for (size_t done = 0; done < n;) {
    struct iovec part = {const_cast<unsigned char*>(src + done),
                         std::min<size_t>(n - done, static_cast<size_t>(capacity))};
    ssize_t handed = vmsplice(ends[1], &part, 1, 0);
    if (handed < 0 && errno == EINTR) continue;
    if (handed <= 0) fail("vmsplice " + f.path, handed < 0 ? errno : EIO);
    for (ssize_t left = handed; left > 0;) {
      loff_t at = static_cast<loff_t>(done);
      ssize_t moved = splice(ends[0], nullptr, f.fd, &at, static_cast<size_t>(left), 0);
      if (moved < 0 && errno == EINTR) continue;
      if (moved <= 0) fail("splice " + f.path, moved < 0 ? errno : ENOSPC);
      left -= moved;
      done += static_cast<size_t>(moved);
    }
  }
  return seconds_since(t0);
}

void row(const char* metric, const char* cse, size_t n, double value, const char* unit) {
  std::printf("%s,%s,%zu,%.6g,%s\n", metric, cse, n, value, unit);
}
// Each measurement as throughput and as the median time it came from.
void rows(const char* metric, const char* cse, size_t n, const std::vector<double>& secs) {
  double t = median(secs);
  row(metric, cse, n, static_cast<double>(n) / t / 1e9, "GB/s");
  row(metric, cse, n, t, "s");
}

void usage() {
  std::fprintf(stderr, "usage: physical_limit SIZE_BYTES [REPEATS=5] [SHM_DIR=/dev/shm]\n");
  std::exit(2);
}

unsigned long long parse_positive(const char* s, const char* name) {
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0 || s[0] == '-') {
    std::fprintf(stderr, "error: %s must be a positive integer, got '%s'\n", name, s);
    usage();
  }
  return v;
}

void run(size_t n, int repeats, const std::string& dir) {
  // The ftruncate case writes into a sparse file: on a full tmpfs that is a
  // SIGBUS (no cleanup), so refuse up front with a readable error instead.
  struct statvfs vfs;
  if (statvfs(dir.c_str(), &vfs) != 0) fail("statvfs " + dir);
  if (static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize < n)
    fail("not enough free space in " + dir + " for " + std::to_string(n) + " bytes", ENOSPC);
  Buffer src(n);
  fill(src.bytes(), n);
  std::vector<double> t(repeats);

  std::printf("metric,case,size_bytes,value,unit\n");
  const struct { const char* name; Alloc how; } fresh[] = {
      {"ftruncate", Alloc::Ftruncate},
      {"fallocate", Alloc::Fallocate},
      {"fallocate_populate", Alloc::FallocatePopulate}};
  for (const auto& c : fresh) {
    for (auto& x : t) x = fresh_shm_copy(dir, src.bytes(), n, c.how);
    rows("memcpy_fresh_shm", c.name, n, t);
    std::fflush(stdout);
  }
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (auto& x : t) x = fresh_shm_copy_threads(dir, src.bytes(), n, threads);
  rows("memcpy_fresh_shm", "threads_populate", n, t);
  row("memcpy_fresh_shm", "threads_populate", n, threads, "threads");
  const struct { const char* name; double (*copy)(const std::string&, const unsigned char*, size_t); }
      kernel[] = {{"pwrite", fresh_shm_write}, {"vmsplice", fresh_shm_splice}};
  for (const auto& c : kernel) {
    for (int r = 0; r < repeats; ++r) {
      std::unique_ptr<Buffer> fresh;
      if (r > 0) {
        fresh = std::make_unique<Buffer>(n);
        fill(fresh->bytes(), n);
      }
      t[r] = c.copy(dir, fresh ? fresh->bytes() : src.bytes(), n);
    }
    rows("write_fresh_shm", c.name, n, t);
    std::fflush(stdout);
  }
  // The vmsplice fill right after kFreedBytes of memory were written and
  // unmapped, as a full garbage collection leaves a process before the next
  // share: on some virtual machines the kernel's next pages then cost more.
  if (n <= kFreedBytes) {
    for (auto& x : t) {
      {
        Buffer freed(kFreedBytes);
        std::memset(freed.p, 1, kFreedBytes);
      }
      Buffer fresh(n);
      fill(fresh.bytes(), n);
      x = fresh_shm_splice(dir, fresh.bytes(), n);
    }
    rows("write_fresh_shm", "vmsplice_after_free", n, t);
    std::fflush(stdout);
  }

  {
    Buffer dst(n);
    std::memset(dst.p, 0x5a, n);  // first write: faults taken here, not timed
    for (auto& x : t) {
      auto t0 = Clock::now();
      std::memcpy(dst.p, src.p, n);
      x = seconds_since(t0);
    }
    g_sink = dst.bytes()[n - 1];
    rows("memcpy_touched", "anon", n, t);
  }

  for (auto& x : t) {
    auto t0 = Clock::now();
    g_sink = sum_words(src.bytes(), n);
    x = seconds_since(t0);
  }
  rows("read_seq", "anon", n, t);

  // A populated shm file is read through fresh MAP_PRIVATE mappings: the first
  // pass pays mmap + page-table faults (pages already exist in tmpfs), the
  // second pass over the same mapping shows the steady-state read rate.
  {
    ShmFile f(dir);
    int rc = posix_fallocate(f.fd, 0, static_cast<off_t>(n));
    if (rc != 0) fail("posix_fallocate " + f.path, rc);
    {
      Mapping w(n, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd);
      std::memcpy(w.p, src.p, n);
    }
    std::vector<double> warm(repeats);
    for (int r = 0; r < repeats; ++r) {
      auto t0 = Clock::now();
      Mapping m(n, PROT_READ, MAP_PRIVATE, f.fd);
      g_sink = sum_words(m.bytes(), n);
      t[r] = seconds_since(t0);
      t0 = Clock::now();
      g_sink = sum_words(m.bytes(), n);
      warm[r] = seconds_since(t0);
    }
    rows("read_seq_shm", "first_touch", n, t);
    rows("read_seq_shm", "warm", n, warm);

    // The same first read after the kernel has filled the mapping's page
    // tables: what is left is the cost of each page's first access itself
    // (on a hypervisor that shadows page tables, most of it).
    std::vector<double> populate(repeats);
    bool can_populate = true;
    for (int r = 0; r < repeats && can_populate; ++r) {
      Mapping m(n, PROT_READ, MAP_PRIVATE, f.fd);
      auto t0 = Clock::now();
      if (madvise(m.p, n, MADV_POPULATE_READ) != 0) {
        if (errno != EINVAL) fail("MADV_POPULATE_READ " + f.path);
        can_populate = false;
        break;
      }
      populate[r] = seconds_since(t0);
      t0 = Clock::now();
      g_sink = sum_words(m.bytes(), n);
      t[r] = seconds_since(t0);
    }
    if (can_populate) {
      rows("read_seq_shm", "populate", n, populate);
      rows("read_seq_shm", "after_populate", n, t);
    }

    // One byte read from a fresh mapping of the same pages, at a page far
    // from the previous one: what a consumer's first x[i] cannot avoid.
    std::vector<double> one(std::max(repeats, 101));
    const size_t pages = n / 4096;
    for (size_t r = 0; r < one.size(); ++r) {
      Mapping m(n, PROT_READ, MAP_PRIVATE, f.fd);
      const size_t page = (r * 7919) % pages;
      auto t0 = Clock::now();
      g_sink = m.bytes()[page * 4096];
      one[r] = seconds_since(t0);
    }
    row("read_fault_shm", "one_page", n, median(one) * 1e6, "us");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) usage();
  unsigned long long n = parse_positive(argv[1], "SIZE_BYTES");
  unsigned long long reps = argc > 2 ? parse_positive(argv[2], "REPEATS") : 5;
  std::string dir = argc > 3 ? argv[3] : "/dev/shm";
  if (reps > 100000) usage();
  try {
    run(static_cast<size_t>(n), static_cast<int>(reps), dir);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  if (std::fflush(stdout) != 0) {
    std::perror("error: writing stdout");
    return 1;
  }
  return 0;
}
