// A whole file mapped read-only into memory (RAII). Checkpoints are read through
// this so that weights are used in place, without a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace m3 {

class MappedFile {
 public:
  // Throws m3::Error (M3_ERR_IO) naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the whole pages inside [p, p + bytes) from this process's memory; they are read
  // from the file again if touched. A range outside the mapping is ignored.
  void release_pages(const void* p, std::size_t bytes) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace m3
