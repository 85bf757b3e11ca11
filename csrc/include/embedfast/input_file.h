// Input files of the ops, read with pread into buffers (never memory-mapped), and the block readers the parsers
// use over a file or a caller's memory buffer.
//
// Why not mmap: a mapped file that another process truncates (or rewrites in place, as `cp` does) while it is
// read kills the reader with SIGBUS, and a same-size rewrite silently changes what is read. With pread a
// shrinking file is a short read, and InputFile::check_unchanged compares the size and modification time at the
// end with those at open: either way the op raises an error naming the file ("changed while it was being read"),
// never a signal and never silently fewer rows.
//
// Opening never blocks: the path is opened O_NONBLOCK (a FIFO without a writer would otherwise block forever in
// open), anything that is not a regular file (directory, FIFO, device, socket) is refused with an error saying
// what it is, and O_NONBLOCK is cleared again for the reads.
//
// Memory: a reader holds one block (plus the unfinished line or token it carries to the next block) in a buffer
// taken from a small process-wide pool, so reading a file of any size keeps a few MiB per thread resident and the
// file's pages are only in the page cache (what the earlier mapped reader got with MADV_DONTNEED).
#pragma once

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace embedfast {

// "a directory", "a named pipe (FIFO)", ... for the error that refuses a non-regular path.
inline const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a named pipe (FIFO)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

class InputFile {
 public:
  InputFile(const std::string& path, const char* op) : path_(path), op_(op) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd_ < 0) {
      const int err = errno;
      struct stat st;
      // a socket cannot be opened at all (ENXIO): say what it is rather than "No such device or address"
      if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        TORCH_CHECK_VALUE(false, op, ": '", path, "' is ", file_kind(st.st_mode), ", not a regular file");
      TORCH_CHECK(false, op, ": cannot open '", path, "': ", std::strerror(err));
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) close_and_fail("cannot stat");
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      fd_ = -1;
      TORCH_CHECK_VALUE(false, op, ": '", path, "' is ", file_kind(st.st_mode), ", not a regular file");
    }
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) close_and_fail("cannot set up");
    size_ = static_cast<size_t>(st.st_size);
    mtime_ = st.st_mtim;
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);  // advisory: larger read-ahead
  }
  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Size in bytes when the file was opened: everything reads [0, size()).
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Reads exactly n bytes at `offset` (offset + n <= size()). A read that ends early means the file shrank.
  void read(size_t offset, char* dst, size_t n) const {
    while (n > 0) {
      const ssize_t r = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        TORCH_CHECK(false, op_, ": cannot read '", path_, "' at byte ", offset, ": ", std::strerror(err));
      }
      if (r == 0) changed("its data now ends at byte " + std::to_string(offset));
      dst += r;
      offset += static_cast<size_t>(r);
      n -= static_cast<size_t>(r);
    }
  }

  // Raises unless the size and modification time are those seen at open (call after the last read).
  void check_unchanged() const {
    struct stat st;
    if (::fstat(fd_, &st) != 0) fail_errno("cannot stat");
    if (static_cast<size_t>(st.st_size) != size_)
      changed("it now has " + std::to_string(st.st_size) + " bytes");
    if (st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec)
      changed("it was modified (same size, new modification time)");
  }

  [[noreturn]] void changed(const std::string& how) const {
    TORCH_CHECK(false, op_, ": '", path_, "' changed while it was being read: it had ", size_,
                " bytes when opened and ", how, " (truncated, appended to or rewritten by another process?); "
                "read it again once it is complete");
  }

 private:
  [[noreturn]] void fail_errno(const char* what) const {
    TORCH_CHECK(false, op_, ": ", what, " '", path_, "': ", std::strerror(errno));
  }
  [[noreturn]] void close_and_fail(const char* what) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    TORCH_CHECK(false, op_, ": ", what, " '", path_, "': ", std::strerror(err));
  }
  std::string path_;
  const char* op_;
  int fd_ = -1;
  size_t size_ = 0;
  struct timespec mtime_ {};
};

// Read buffers shared by all calls: a streamed corpus calls an op once per few-MiB block, and a fresh buffer
// per call and thread would cost page faults comparable to the work. A buffer grown far beyond the usual size
// (for one huge line) is not kept.
class PooledBuffer {
 public:
  PooledBuffer() {
    std::lock_guard<std::mutex> lock(mu());
    auto& pool = free_list();
    if (!pool.empty()) {
      buf_ = std::move(pool.back());
      pool.pop_back();
    } else {
      buf_ = std::make_unique<std::vector<char>>();
    }
  }
  ~PooledBuffer() {
    if (!buf_ || buf_->size() > (size_t(64) << 20)) return;
    std::lock_guard<std::mutex> lock(mu());
    if (free_list().size() < 64) free_list().push_back(std::move(buf_));
  }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  PooledBuffer(PooledBuffer&& o) noexcept : buf_(std::move(o.buf_)) {}
  std::vector<char>& get() { return *buf_; }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<std::vector<char>>>& free_list() {
    static auto* l = new std::vector<std::unique_ptr<std::vector<char>>>();  // never destroyed (exit order)
    return *l;
  }
  std::unique_ptr<std::vector<char>> buf_;
};

// A text to read: a file (read with pread) or a caller's memory buffer (read in place).
class TextInput {
 public:
  TextInput(const InputFile* file) : file_(file), size_(file->size()) {}
  TextInput(const char* mem, size_t size) : mem_(mem), size_(size) {}
  size_t size() const { return size_; }
  bool is_file() const { return file_ != nullptr; }
  const InputFile* file() const { return file_; }

  char byte_at(size_t offset) const {
    if (!file_) return mem_[offset];
    char c;
    file_->read(offset, &c, 1);
    return c;
  }

  // Offset of the first byte c in [from, to), or `to` if there is none.
  size_t find(char c, size_t from, size_t to) const {
    if (from >= to) return to;
    if (!file_) {
      const void* p = std::memchr(mem_ + from, c, to - from);
      return p ? static_cast<size_t>(static_cast<const char*>(p) - mem_) : to;
    }
    constexpr size_t kWindow = size_t(64) << 10;
    char buf[kWindow];
    for (size_t pos = from; pos < to;) {
      const size_t n = std::min(kWindow, to - pos);
      file_->read(pos, buf, n);
      if (const void* p = std::memchr(buf, c, n)) return pos + static_cast<size_t>(static_cast<const char*>(p) - buf);
      pos += n;
    }
    return to;
  }

  void check_unchanged() const {
    if (file_) file_->check_unchanged();
  }

  // Reads [begin, end) front to back. next() hands out consecutive pieces [b, e) that together are exactly the
  // range; each piece except the last ends right after a byte at which `last_cut(b, e)` says it may be cut
  // (it returns the position after the last such byte in [b, e), or nullptr), so a line or token never
  // straddles two pieces. A memory text is one piece, in place; a file is read `block` bytes at a time into
  // `buf` (grown when one line or token is longer than a block).
  class Blocks {
   public:
    Blocks(const TextInput& in, size_t begin, size_t end, size_t block, std::vector<char>& buf)
        : in_(in), pos_(begin), end_(end), block_(std::max<size_t>(block, 1)), buf_(buf) {}

    template <typename LastCut>
    bool next(const char*& b, const char*& e, size_t& offset, LastCut&& last_cut) {
      if (!in_.file_) {
        if (pos_ >= end_) return false;
        b = in_.mem_ + pos_;
        e = in_.mem_ + end_;
        offset = pos_;
        pos_ = end_;
        return true;
      }
      if (tail_len_ > 0 && tail_at_ > 0) std::memmove(buf_.data(), buf_.data() + tail_at_, tail_len_);
      size_t have = tail_len_;
      tail_at_ = tail_len_ = 0;
      if (have == 0 && pos_ >= end_) return false;
      offset = pos_ - have;
      size_t scanned = have;  // the carried bytes hold no cut
      while (pos_ < end_) {
        const size_t n = std::min(block_, end_ - pos_);
        if (buf_.size() < have + n) buf_.resize(have + n);  // amortised: the vector at least doubles
        in_.file_->read(pos_, buf_.data() + have, n);
        pos_ += n;
        have += n;
        if (pos_ >= end_) break;
        if (const char* cut = last_cut(buf_.data() + scanned, buf_.data() + have)) {
          b = buf_.data();
          e = cut;
          tail_at_ = static_cast<size_t>(cut - b);
          tail_len_ = have - tail_at_;
          return true;
        }
        scanned = have;
      }
      b = buf_.data();
      e = b + have;
      return true;
    }

   private:
    const TextInput& in_;
    size_t pos_, end_, block_;
    std::vector<char>& buf_;
    size_t tail_at_ = 0, tail_len_ = 0;
  };

 private:
  const InputFile* file_ = nullptr;
  const char* mem_ = nullptr;
  size_t size_ = 0;
};

// Sequential reader of a file through a buffer: ensure(n) makes up to n bytes available at data(), reading at
// least `block` bytes at a time (the binary parsers walk their records with it).
class SeqReader {
 public:
  SeqReader(const InputFile& f, size_t offset, std::vector<char>& buf, size_t block = size_t(1) << 20)
      : f_(f), pos_(offset), buf_(buf), block_(std::max<size_t>(block, 1)) {}
  // Bytes available at data() afterwards: min(n, the rest of the file) or more.
  size_t ensure(size_t n) {
    if (avail_ >= n) return avail_;
    if (at_ > 0 && avail_ > 0) std::memmove(buf_.data(), buf_.data() + at_, avail_);
    at_ = 0;
    const size_t rest = f_.size() - pos_;
    const size_t want = std::min(std::max(n, block_) - avail_, rest);
    if (buf_.size() < avail_ + want) buf_.resize(avail_ + want);
    if (want > 0) f_.read(pos_, buf_.data() + avail_, want);
    pos_ += want;
    avail_ += want;
    return avail_;
  }
  const char* data() const { return buf_.data() + at_; }
  void advance(size_t n) {
    at_ += n;
    avail_ -= n;
  }
  size_t offset() const { return pos_ - avail_; }  // file offset of data()

 private:
  const InputFile& f_;
  size_t pos_;
  std::vector<char>& buf_;
  size_t block_;
  size_t at_ = 0, avail_ = 0;
};

// last_cut for pieces of whole lines: after the last '\n'.
inline const char* after_last_newline(const char* b, const char* e) {
  const void* p = ::memrchr(b, '\n', static_cast<size_t>(e - b));
  return p ? static_cast<const char*>(p) + 1 : nullptr;
}

// last_cut for pieces that may end anywhere (counting bytes).
inline const char* cut_anywhere(const char*, const char* e) { return e; }

}  // namespace embedfast
