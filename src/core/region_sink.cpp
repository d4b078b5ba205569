#include "region_sink.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "error.h"
#include "format.h"
#include "process.h"
#include "region_file.h"

namespace shmr {

namespace {

// A background job is written in pieces, so that a sink being destroyed
// stops within one piece.
constexpr uint64_t kPieceBytes = uint64_t{64} << 20;

// Writes all of [data, data + size) at `offset`; returns 0 or an errno.
int pwrite_all(int fd, uint64_t offset, const unsigned char* data, uint64_t size) noexcept {
  while (size > 0) {
    // pwrite() moves at most about 2 GB per call.
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(size, uint64_t{1} << 30));
    ssize_t written = ::pwrite(fd, data, chunk, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (written == 0) return ENOSPC;  // no progress: the file system is full
    data += written;
    offset += static_cast<uint64_t>(written);
    size -= static_cast<uint64_t>(written);
  }
  return 0;
}

class Pipe {
 public:
  // A new pipe, or a closed one (ok() false) when none can be made.
  static Pipe make() noexcept {
    Pipe pipe;
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return pipe;
    pipe.read_ = FileDescriptor(ends[0]);
    pipe.write_ = FileDescriptor(ends[1]);
    // A larger pipe means fewer calls; without the permission, 64 KB.
    int size = ::fcntl(pipe.write_.get(), F_SETPIPE_SZ, 1 << 20);
    pipe.capacity_ = size > 0 ? static_cast<uint64_t>(size) : uint64_t{65536};
    return pipe;
  }
  bool ok() const noexcept { return read_.get() >= 0; }
  int read_end() const noexcept { return read_.get(); }
  int write_end() const noexcept { return write_.get(); }
  uint64_t capacity() const noexcept { return capacity_; }

 private:
  FileDescriptor read_;
  FileDescriptor write_;
  uint64_t capacity_ = 0;
};

// Making and sizing a pipe, then closing it, takes four system calls:
// about 7 us on the project's machine, as much as the rest of a small
// share's system calls together. So each thread keeps one pipe between
// writes, and keeps it only while it is empty. A forked child makes its
// own: two processes splicing through one pipe would take each other's
// bytes.
class ThreadPipe {
 public:
  // The calling thread's pipe, made on first use in this process; a closed
  // one when none can be made.
  Pipe& get() noexcept {
    const int64_t self = current_pid();
    if (owner_ != self || !pipe_.ok()) {
      pipe_ = Pipe::make();
      owner_ = self;
    }
    return pipe_;
  }
  // After a write that may have left bytes in the pipe: they must never
  // reach another file.
  void drop() noexcept { pipe_ = Pipe(); }

 private:
  static int64_t current_pid() noexcept {
    try {
      return process::current().pid;
    } catch (...) {
      return static_cast<int64_t>(::getpid());
    }
  }

  int64_t owner_ = 0;
  Pipe pipe_;
};

thread_local ThreadPipe thread_pipe;

// A rest this short after a full pipe goes by one pwrite(): vmsplice() and
// splice() of it would be two calls (an unaligned 1 MB vector spans 257
// pages, one more than an unprivileged pipe holds), and pwrite() reads at
// most three of the source's pages through its user address.
constexpr uint64_t kShortRest = uint64_t{8} << 10;

// Writes all of [data, data + size) at `offset` through `pipe`: vmsplice()
// hands the kernel the source's pages and splice() copies them into the
// file. Unlike pwrite(), the kernel never reads the source through its user
// address, which on some virtual machines costs a fault per page the first
// time (the object being shared was usually just written by R). Where
// splicing is not possible, the rest goes by pwrite(). Returns 0 or an
// errno; `emptied` says whether the pipe is empty again.
int splice_through(Pipe& pipe, int fd, uint64_t offset, const unsigned char* data, uint64_t size,
                   bool& emptied) noexcept {
  emptied = true;
  uint64_t done = 0;
  while (done < size) {
    if (done > 0 && size - done <= kShortRest) break;
    struct iovec source;
    source.iov_base = const_cast<unsigned char*>(data + done);
    source.iov_len = static_cast<size_t>(std::min(size - done, pipe.capacity()));
    ssize_t handed = ::vmsplice(pipe.write_end(), &source, 1, 0);
    if (handed < 0 && errno == EINTR) continue;
    if (handed <= 0) break;  // not possible here: the rest by pwrite()
    // What sits in the pipe goes into the file before anything else.
    emptied = false;
    uint64_t left = static_cast<uint64_t>(handed);
    while (left > 0) {
      loff_t at = static_cast<loff_t>(offset + done);
      ssize_t moved = ::splice(pipe.read_end(), nullptr, fd, &at, static_cast<size_t>(left), 0);
      if (moved < 0 && errno == EINTR) continue;
      if (moved < 0 && (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)) return errno;
      if (moved <= 0) {
        // The file system cannot splice: the pipe's bytes are still in the
        // source, so pwrite() takes over from here.
        return pwrite_all(fd, offset + done, data + done, size - done);
      }
      done += static_cast<uint64_t>(moved);
      left -= static_cast<uint64_t>(moved);
    }
    emptied = true;
  }
  return done < size ? pwrite_all(fd, offset + done, data + done, size - done) : 0;
}

int splice_all(int fd, uint64_t offset, const unsigned char* data, uint64_t size) noexcept {
  Pipe& pipe = thread_pipe.get();
  if (!pipe.ok()) return pwrite_all(fd, offset, data, size);
  bool emptied = true;
  int err = splice_through(pipe, fd, offset, data, size, emptied);
  if (!emptied) thread_pipe.drop();
  return err;
}

int write_all(int fd, uint64_t offset, const unsigned char* data, uint64_t size) noexcept {
  return size >= FileSink::kSpliceBytes ? splice_all(fd, offset, data, size)
                              : pwrite_all(fd, offset, data, size);
}

}  // namespace

void MemorySink::put(uint64_t offset, const void* data, uint64_t size) {
  if (size == 0) return;
  if (offset > size_ || size > size_ - offset)
    throw Error(ErrorKind::InvalidArgument, "region write out of range");
  std::memcpy(base_ + offset, data, size);
}

FileSink::FileSink(int fd, uint64_t size, std::string directory)
    : fd_(fd), size_(size), directory_(std::move(directory)) {}

FileSink::~FileSink() { stop_background(); }

void FileSink::check_range(uint64_t offset, uint64_t size) const {
  if (offset > size_ || size > size_ - offset)
    throw Error(ErrorKind::InvalidArgument, "region write out of range");
}

void FileSink::fail(int errnum) const {
  if (errnum == ENOSPC || errnum == EDQUOT || errnum == EFBIG)
    throw Error(ErrorKind::NoSpace, "not enough space in " + directory_ + " for a region of " +
                                        std::to_string(size_) + " bytes");
  throw_system_error("cannot write a region in " + directory_, errnum);
}

void FileSink::write_now(uint64_t offset, const void* data, uint64_t size) {
  int err = write_all(fd_, offset, static_cast<const unsigned char*>(data), size);
  if (err != 0) fail(err);
}

void FileSink::flush_buffer() {
  if (buffer_.empty()) return;
  write_now(buffer_offset_, buffer_.data(), buffer_.size());
  buffer_.clear();
}

void FileSink::put(uint64_t offset, const void* data, uint64_t size) {
  if (size == 0) return;
  check_range(offset, size);
  const uint64_t end = buffer_offset_ + buffer_.size();
  // The region's parts start at multiples of format::kAlignment: a shorter
  // gap is padding no other put writes, so it joins the buffer as zeros.
  const bool follows = !buffer_.empty() && offset >= end && offset - end < format::kAlignment;
  if (follows && buffer_.size() + (offset - end) + size <= kBufferBytes) {
    buffer_.resize(buffer_.size() + (offset - end), 0);
  } else {
    flush_buffer();
    if (size >= kBufferBytes) {
      write_now(offset, data, size);
      return;
    }
    buffer_offset_ = offset;
  }
  const auto* bytes = static_cast<const unsigned char*>(data);
  buffer_.insert(buffer_.end(), bytes, bytes + size);
}

void FileSink::put_lasting(uint64_t offset, const void* data, uint64_t size) {
  if (size < kBackgroundBytes) {
    put(offset, data, size);
    return;
  }
  check_range(offset, size);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!background_.joinable()) {
      stopping_ = false;
      try {
        background_ = std::thread([this] { run_background(); });
      } catch (const std::system_error&) {
        // No thread can start (a limit on processes or threads, such as a
        // container's pids.max, or no address space for its stack). The
        // thread only lets the caller go on meanwhile: the bytes go now, in
        // this thread; no job is queued, as none can be without a thread.
      }
    }
    if (background_.joinable()) {
      jobs_.push_back({offset, data, size});
      wake_.notify_one();
      return;
    }
  }
  put(offset, data, size);
}

void FileSink::run_background() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, with nothing left to write
    const Job now = jobs_.front();
    const uint64_t piece = std::min(now.size, kPieceBytes);
    busy_ = true;
    lock.unlock();
    int err = background_error_ == 0
                  ? write_all(fd_, now.offset, static_cast<const unsigned char*>(now.data), piece)
                  : 0;
    lock.lock();
    busy_ = false;
    if (err != 0 && background_error_ == 0) background_error_ = err;
    // Only this thread removes jobs one by one, so the front is the same
    // job, unless stop_background() dropped them all meanwhile.
    if (!jobs_.empty()) {
      Job& same = jobs_.front();
      same.offset += piece;
      same.data = static_cast<const unsigned char*>(same.data) + piece;
      same.size -= piece;
      // After an error the rest is not written: finish() reports it.
      if (same.size == 0 || background_error_ != 0) jobs_.pop_front();
    }
    if (jobs_.empty()) idle_.notify_all();
  }
}

void FileSink::stop_background() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!background_.joinable()) return;
    // Stopped early (an error elsewhere): what is left need not be written.
    jobs_.clear();
    stopping_ = true;
    wake_.notify_one();
  }
  background_.join();
}

void FileSink::finish() {
  flush_buffer();
  int err = 0;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (background_.joinable()) {
      idle_.wait(lock, [this] { return jobs_.empty() && !busy_; });
      stopping_ = true;
      wake_.notify_one();
    }
    err = background_error_;
  }
  if (background_.joinable()) background_.join();
  if (err != 0) fail(err);
}

}  // namespace shmr
