// Read-only memory map of a whole file, with errors that name the op and the file.
#pragma once

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace embedfast {

class ReadOnlyMap {
 public:
  ReadOnlyMap(const std::string& path, const char* op) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    TORCH_CHECK(fd_ >= 0, op, ": cannot open '", path, "': ", std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      TORCH_CHECK(false, op, ": cannot stat '", path, "': ", std::strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      TORCH_CHECK_VALUE(false, op, ": '", path, "' is a directory, not a file");
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd_);
        TORCH_CHECK(false, op, ": cannot map '", path, "': ", std::strerror(err));
      }
      data_ = static_cast<const char*>(p);
      ::madvise(p, size_, MADV_SEQUENTIAL);
    }
  }
  ~ReadOnlyMap() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  ReadOnlyMap(const ReadOnlyMap&) = delete;
  ReadOnlyMap& operator=(const ReadOnlyMap&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return size_; }

  // Drop the pages of [begin, end) from this process (they stay in the page cache): keeps the resident set
  // small when a large file is read once, front to back.
  void release(const char* begin, const char* end) const {
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t b = (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
    const uintptr_t e = reinterpret_cast<uintptr_t>(end) & ~(page - 1);
    if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
  }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace embedfast
