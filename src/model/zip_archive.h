// Read-only view of a ZIP archive held in memory (typically a MappedFile), as torch.save()
// writes it. Only what a checkpoint reader needs: the central directory (with ZIP64), and the
// bytes of "stored" (uncompressed) entries, in place. Every offset and size taken from the
// file is bounds-checked against the buffer before use; nothing is decompressed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <map>
#include <vector>

namespace m3 {

struct ZipEntry {
  std::string name;
  uint16_t flags = 0;   // general purpose bit flags (bit 0: encrypted)
  uint16_t method = 0;  // 0 = stored, 8 = deflate, ...
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

class ZipArchive {
 public:
  // Parses the central directory of the archive in [data, data + size); the buffer must outlive
  // this object. `label` (the file path) starts every error message. Throws m3::Error:
  // M3_ERR_FORMAT for a corrupt or truncated archive or something that is not a ZIP at all,
  // M3_ERR_UNSUPPORTED for valid archives this reader does not handle (multi-disk).
  ZipArchive(const uint8_t* data, std::size_t size, std::string label);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when there is no entry with exactly this name.
  const ZipEntry* find(std::string_view name) const;

  // The bytes of a stored entry, pointing into the buffer (zero copy). Throws M3_ERR_UNSUPPORTED
  // for compressed or encrypted entries, M3_ERR_FORMAT when the local header disagrees with the
  // central directory or the data runs past the end of the buffer.
  std::span<const uint8_t> stored_data(const ZipEntry& entry) const;

  const std::string& label() const { return label_; }

 private:
  const uint8_t* data_;
  std::size_t size_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  // Ordered map, not a hash map: entry names are untrusted, and a tree cannot be driven into
  // quadratic behaviour by crafted hash collisions.
  std::map<std::string, std::size_t, std::less<>> by_name_;
};

}  // namespace m3
