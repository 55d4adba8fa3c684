#include "model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace m3 {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(M3_ERR_IO, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(M3_ERR_IO, path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(M3_ERR_IO, path + ": not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    fail(M3_ERR_FORMAT, path + ": file is empty");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) fail(M3_ERR_IO, path + ": cannot mmap: " + std::strerror(err));
  data_ = static_cast<const uint8_t*>(p);
}

void MappedFile::release_pages(const void* p, std::size_t bytes) const {
  const auto begin = reinterpret_cast<uintptr_t>(p), end = begin + bytes;
  const auto map_begin = reinterpret_cast<uintptr_t>(data_), map_end = map_begin + size_;
  if (!data_ || begin < map_begin || end > map_end || begin >= end) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  // A private read-only file mapping: dropped pages are re-read from the file, never lost.
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace m3
