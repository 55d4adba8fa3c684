#include "model/zip_archive.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/error.h"
#include "common/quote.h"

namespace m3 {
namespace {

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;

constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EocdSize = 56;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kMaxCommentSize = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;

// ZIP is little-endian; assemble bytes explicitly so the host order and alignment never matter.
uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) {
  return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32);
}

// [off, off + len) lies within [0, limit); written so that no addition can overflow.
bool in_bounds(uint64_t off, uint64_t len, uint64_t limit) {
  return off <= limit && len <= limit - off;
}


}  // namespace

ZipArchive::ZipArchive(const uint8_t* data, std::size_t size, std::string label)
    : data_(data), size_(size), label_(std::move(label)) {
  const std::string where = label_ + ": ";
  if (size_ < kEocdSize) {
    fail(M3_ERR_FORMAT, where + "not a ZIP archive (only " + std::to_string(size_) + " bytes)");
  }

  // The end-of-central-directory record is the last thing in the file, followed only by a
  // comment of its own declared length; search backwards over the possible comment sizes.
  const uint64_t size64 = size_;
  uint64_t eocd = 0;
  bool found = false;
  const uint64_t max_back = std::min(size64 - kEocdSize, kMaxCommentSize);
  for (uint64_t back = 0; back <= max_back; ++back) {
    const uint64_t pos = size64 - kEocdSize - back;
    if (rd32(data_ + pos) == kEocdSig && rd16(data_ + pos + 20) == back) {
      eocd = pos;
      found = true;
      break;
    }
  }
  if (!found) fail(M3_ERR_FORMAT, where + "not a ZIP archive (no end-of-central-directory record)");

  uint64_t this_disk = rd16(data_ + eocd + 4);
  uint64_t cd_disk = rd16(data_ + eocd + 6);
  uint64_t count_on_disk = rd16(data_ + eocd + 8);
  uint64_t count = rd16(data_ + eocd + 10);
  uint64_t cd_size = rd32(data_ + eocd + 12);
  uint64_t cd_offset = rd32(data_ + eocd + 16);
  uint64_t cd_limit = eocd;  // the central directory must end before the records that follow it

  // ZIP64 (archives > 4 GiB or > 65535 entries): a locator right before the classic record
  // points at a ZIP64 end record whose 64-bit fields replace the saturated 16/32-bit ones.
  if (eocd >= kZip64LocatorSize && rd32(data_ + eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = data_ + eocd - kZip64LocatorSize;
    const uint64_t record_disk = rd32(loc + 4);
    const uint64_t record = rd64(loc + 8);
    const uint64_t total_disks = rd32(loc + 16);
    if (record_disk != 0 || total_disks > 1) {
      fail(M3_ERR_UNSUPPORTED, where + "multi-disk ZIP archives are not supported");
    }
    const uint64_t locator_pos = eocd - kZip64LocatorSize;
    if (!in_bounds(record, kZip64EocdSize, locator_pos) || rd32(data_ + record) != kZip64EocdSig) {
      fail(M3_ERR_FORMAT, where + "corrupt ZIP64 end-of-central-directory record (offset " +
                              std::to_string(record) + ")");
    }
    const uint8_t* r = data_ + record;
    this_disk = rd32(r + 16);
    cd_disk = rd32(r + 20);
    count_on_disk = rd64(r + 24);
    count = rd64(r + 32);
    cd_size = rd64(r + 40);
    cd_offset = rd64(r + 48);
    cd_limit = record;
  }

  if (this_disk != 0 || cd_disk != 0) {
    fail(M3_ERR_UNSUPPORTED, where + "multi-disk ZIP archives are not supported");
  }
  if (count_on_disk != count) {
    fail(M3_ERR_FORMAT, where + "corrupt ZIP archive: inconsistent entry counts (" +
                            std::to_string(count_on_disk) + " vs " + std::to_string(count) + ")");
  }
  if (!in_bounds(cd_offset, cd_size, cd_limit)) {
    fail(M3_ERR_FORMAT, where + "corrupt ZIP archive: central directory (offset " +
                            std::to_string(cd_offset) + ", size " + std::to_string(cd_size) +
                            ") lies outside the file (truncated?)");
  }
  // Each central header takes at least 46 bytes, which bounds the count before we reserve.
  if (count > cd_size / kCentralSize) {
    fail(M3_ERR_FORMAT, where + "corrupt ZIP archive: " + std::to_string(count) +
                            " entries cannot fit in a central directory of " +
                            std::to_string(cd_size) + " bytes");
  }

  entries_.reserve(static_cast<std::size_t>(count));
  const uint64_t cd_end = cd_offset + cd_size;
  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string at = where + "corrupt ZIP central directory entry #" + std::to_string(i) + ": ";
    if (!in_bounds(pos, kCentralSize, cd_end)) fail(M3_ERR_FORMAT, at + "truncated header");
    const uint8_t* h = data_ + pos;
    if (rd32(h) != kCentralSig) fail(M3_ERR_FORMAT, at + "bad signature");
    ZipEntry e;
    e.flags = rd16(h + 8);
    e.method = rd16(h + 10);
    e.compressed_size = rd32(h + 20);
    e.uncompressed_size = rd32(h + 24);
    const uint64_t name_len = rd16(h + 28);
    const uint64_t extra_len = rd16(h + 30);
    const uint64_t comment_len = rd16(h + 32);
    uint64_t disk_start = rd16(h + 34);
    e.local_header_offset = rd32(h + 42);
    if (!in_bounds(pos + kCentralSize, name_len + extra_len + comment_len, cd_end)) {
      fail(M3_ERR_FORMAT, at + "name/extra/comment run past the central directory");
    }
    e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_len);

    // ZIP64 extended information: present only for the fields saturated in the fixed header,
    // in this fixed order.
    const uint8_t* extra = h + kCentralSize + name_len;
    uint64_t x = 0;
    while (x + 4 <= extra_len) {
      const uint16_t id = rd16(extra + x);
      const uint64_t len = rd16(extra + x + 2);
      if (len > extra_len - x - 4) fail(M3_ERR_FORMAT, at + "extra field runs past its area");
      if (id == kZip64ExtraId) {
        const uint8_t* f = extra + x + 4;
        uint64_t used = 0;
        auto take = [&](uint64_t& field, uint64_t saturated, uint64_t width) {
          if (field != saturated) return;
          if (used + width > len) fail(M3_ERR_FORMAT, at + "ZIP64 extra field too short");
          field = width == 8 ? rd64(f + used) : rd32(f + used);
          used += width;
        };
        take(e.uncompressed_size, 0xFFFFFFFFu, 8);
        take(e.compressed_size, 0xFFFFFFFFu, 8);
        take(e.local_header_offset, 0xFFFFFFFFu, 8);
        take(disk_start, 0xFFFFu, 4);
      }
      x += 4 + len;
    }
    if (disk_start != 0) fail(M3_ERR_UNSUPPORTED, where + "multi-disk ZIP archives are not supported");

    if (!by_name_.emplace(e.name, entries_.size()).second) {
      // Two entries with one name would make "which one is read" depend on the reader.
      fail(M3_ERR_FORMAT, where + "corrupt ZIP archive: duplicate entry " + quote_for_message(e.name));
    }
    entries_.push_back(std::move(e));
    pos += kCentralSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

std::span<const uint8_t> ZipArchive::stored_data(const ZipEntry& e) const {
  const std::string at = label_ + ": ZIP entry " + quote_for_message(e.name) + ": ";
  if (e.flags & 1u) fail(M3_ERR_UNSUPPORTED, at + "is encrypted");
  if (e.method != 0) {
    fail(M3_ERR_UNSUPPORTED, at + "is compressed (method " + std::to_string(e.method) +
                                 (e.method == 8 ? ", deflate" : "") +
                                 "); only stored (uncompressed) entries are supported");
  }
  if (e.compressed_size != e.uncompressed_size) {
    fail(M3_ERR_FORMAT, at + "stored entry with compressed size " +
                            std::to_string(e.compressed_size) + " != uncompressed size " +
                            std::to_string(e.uncompressed_size));
  }
  // The data starts after the local header, whose name and extra lengths may differ from the
  // central ones (torch pads the local extra field so that data is 64-byte aligned).
  const uint64_t lho = e.local_header_offset;
  if (!in_bounds(lho, kLocalSize, size_) || rd32(data_ + lho) != kLocalSig) {
    fail(M3_ERR_FORMAT, at + "bad local header at offset " + std::to_string(lho));
  }
  const uint8_t* h = data_ + lho;
  if (rd16(h + 8) != e.method) {
    fail(M3_ERR_FORMAT, at + "local header and central directory disagree on the method");
  }
  const uint64_t name_len = rd16(h + 26);
  const uint64_t extra_len = rd16(h + 28);
  if (!in_bounds(lho + kLocalSize, name_len + extra_len, size_)) {
    fail(M3_ERR_FORMAT, at + "local header runs past the end of the file");
  }
  if (name_len != e.name.size() ||
      std::memcmp(h + kLocalSize, e.name.data(), e.name.size()) != 0) {
    fail(M3_ERR_FORMAT, at + "local header names a different entry");
  }
  const uint64_t offset = lho + kLocalSize + name_len + extra_len;
  if (!in_bounds(offset, e.compressed_size, size_)) {
    fail(M3_ERR_FORMAT, at + "data (offset " + std::to_string(offset) + ", " +
                            std::to_string(e.compressed_size) + " bytes) runs past the end of the " +
                            std::to_string(size_) + "-byte file (truncated?)");
  }
  return {data_ + offset, static_cast<std::size_t>(e.compressed_size)};
}

}  // namespace m3
