#include "region_sink.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "format.h"

namespace shmr {

namespace {

// pwrite() moves at most about 2 GB per call; a background job is written in
// pieces so that a sink being destroyed stops within one piece.
constexpr uint64_t kPieceBytes = uint64_t{64} << 20;

// Writes all of [data, data + size) at `offset`; returns 0 or an errno.
int write_all(int fd, uint64_t offset, const unsigned char* data, uint64_t size) noexcept {
  while (size > 0) {
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
  std::lock_guard<std::mutex> lock(mutex_);
  if (!background_.joinable()) {
    stopping_ = false;
    background_ = std::thread([this] { run_background(); });
  }
  jobs_.push_back({offset, data, size});
  wake_.notify_one();
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
