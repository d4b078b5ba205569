// Where the bytes of a region go while RegionWriter writes it. A region is
// written once, front to back, into a file whose unwritten bytes read as
// zeros; the sink decides how the bytes get there.
//
// Writing a fresh shm file through a mapping costs one page fault per page,
// and page faults are what bound share() (CLARIFICATIONS.md, "Physical
// limit"): on the project's machine they do not scale with threads either
// (bench/physical_limit.cpp). FileSink has the kernel copy into the file
// instead, into pages it allocates without mapping them: large runs by
// vmsplice() + splice(), small ones by pwrite().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shmr {

class RegionSink {
 public:
  virtual ~RegionSink() = default;
  // Copies `size` bytes from `data` to `offset`; `data` may change once
  // this returns.
  virtual void put(uint64_t offset, const void* data, uint64_t size) = 0;
  // The same, for data that stays unchanged and alive until finish() has
  // returned (the object being shared): it may be copied later, on another
  // thread.
  virtual void put_lasting(uint64_t offset, const void* data, uint64_t size) {
    put(offset, data, size);
  }
  // Every byte put so far is in place once this returns; throws the first
  // error met (a full file system: ErrorKind::NoSpace).
  virtual void finish() {}
};

// Into memory that the caller owns (tests, the fuzz corpus).
class MemorySink : public RegionSink {
 public:
  MemorySink(void* base, uint64_t size) : base_(static_cast<unsigned char*>(base)), size_(size) {}
  void put(uint64_t offset, const void* data, uint64_t size) override;

 private:
  unsigned char* base_;
  uint64_t size_;
};

// Into an open file, copied by the kernel (see the top of this file). Small
// puts that follow each other are gathered in a buffer and written
// together; lasting puts of at least kBackgroundBytes are written by one
// background thread while the caller goes on with the rest of the region
// (strings, tables: the caller's thread only, as they may read R's memory
// through R's API). Puts must not overlap. The destructor waits for the
// background thread, so the caller's data is never read after the sink is
// gone.
class FileSink : public RegionSink {
 public:
  static constexpr uint64_t kBufferBytes = uint64_t{1} << 20;
  static constexpr uint64_t kBackgroundBytes = uint64_t{8} << 20;
  // Writes from this size on go through a pipe; below it a pipe costs more
  // than it saves.
  static constexpr uint64_t kSpliceBytes = uint64_t{256} << 10;

  // `directory` only names the file system in error messages.
  FileSink(int fd, uint64_t size, std::string directory);
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  ~FileSink() override;

  void put(uint64_t offset, const void* data, uint64_t size) override;
  void put_lasting(uint64_t offset, const void* data, uint64_t size) override;
  void finish() override;

 private:
  struct Job {
    uint64_t offset;
    const void* data;
    uint64_t size;
  };

  void flush_buffer();
  void write_now(uint64_t offset, const void* data, uint64_t size);
  void run_background();
  void stop_background() noexcept;
  [[noreturn]] void fail(int errnum) const;
  void check_range(uint64_t offset, uint64_t size) const;

  int fd_;
  uint64_t size_;
  std::string directory_;
  std::vector<unsigned char> buffer_;
  uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]

  std::thread background_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Job> jobs_;
  bool busy_ = false;
  bool stopping_ = false;
  int background_error_ = 0;  // errno of the first failed background write
};

}  // namespace shmr
