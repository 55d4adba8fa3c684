#include "common/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace m3 {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string read_whole_file(const std::string& path, std::size_t max_bytes, const char* what) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(M3_ERR_IO, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(M3_ERR_IO, path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(M3_ERR_IO, path + ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > max_bytes)
    fail(M3_ERR_LIMIT_EXCEEDED, path + ": " + what + " of " + std::to_string(size) +
                                    " bytes is larger than the limit of " + std::to_string(max_bytes) + " bytes");
  std::string text(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd.get(), text.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(M3_ERR_IO, path + ": read error: " + std::strerror(errno));
    if (n == 0) fail(M3_ERR_IO, path + ": the file shrank while being read");
    done += static_cast<std::size_t>(n);
  }
  return text;
}

}  // namespace m3
