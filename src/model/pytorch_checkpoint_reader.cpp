#include "model/pytorch_checkpoint_reader.h"

#include <cstring>
#include <limits>
#include <span>
#include <string_view>

#include "common/error.h"
#include "common/quote.h"
#include "model/pickle_reader.h"
#include "model/zip_archive.h"

namespace m3 {
namespace {

// The pickled magic number that starts the pre-1.6 (non-zip) torch.save format.
constexpr uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                    0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

std::string_view trim_right(std::span<const uint8_t> bytes) {
  std::string_view s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + ")";
}

// The one "<prefix>/data.pkl" entry; torch names the prefix after the file (or "archive").
const ZipEntry& find_data_pkl(const ZipArchive& zip) {
  constexpr std::string_view kSuffix = "/data.pkl";
  const ZipEntry* found = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    const std::string& n = e.name;
    if (n.size() > kSuffix.size() && n.ends_with(kSuffix) && n.find('/') == n.size() - kSuffix.size()) {
      if (found) {
        fail(M3_ERR_FORMAT, zip.label() + ": several data.pkl entries (" + quote_for_message(found->name) +
                                " and " + quote_for_message(n) + ")");
      }
      found = &e;
    }
  }
  if (!found) {
    fail(M3_ERR_FORMAT, zip.label() + ": no '<name>/data.pkl' entry: not a torch.save() checkpoint");
  }
  return *found;
}

void check_metadata(const ZipArchive& zip, const std::string& prefix) {
  // Storages are raw host-order bytes; this runtime only reads little-endian ones.
  if (const ZipEntry* e = zip.find(prefix + "byteorder")) {
    const std::string_view order = trim_right(zip.stored_data(*e));
    if (order == "big") {
      fail(M3_ERR_UNSUPPORTED, zip.label() + ": " + e->name + ": big-endian checkpoints are not supported");
    }
    if (order != "little") {
      fail(M3_ERR_FORMAT, zip.label() + ": " + e->name + ": unknown byte order " + quote_for_message(order));
    }
  }
  // The archive format version does not change how data.pkl is read; just check it is a number.
  if (const ZipEntry* e = zip.find(prefix + "version")) {
    const std::string_view v = trim_right(zip.stored_data(*e));
    bool digits = !v.empty() && v.size() <= 9;
    for (char c : v) digits = digits && c >= '0' && c <= '9';
    if (!digits) fail(M3_ERR_FORMAT, zip.label() + ": " + e->name + ": bad version " + quote_for_message(v));
  }
}

}  // namespace

std::vector<TensorView> read_pytorch_checkpoint(const MappedFile& file) {
  return read_pytorch_checkpoint(file.data(), file.size(), file.path());
}

std::vector<TensorView> read_pytorch_checkpoint(const uint8_t* data, std::size_t size,
                                                const std::string& label) {
  if (size >= sizeof(kLegacyMagic) && std::memcmp(data, kLegacyMagic, sizeof(kLegacyMagic)) == 0) {
    fail(M3_ERR_UNSUPPORTED, label + ": legacy (pre-1.6, non-zip) torch.save format is not supported; "
                                     "re-save it with a newer torch, or convert it to safetensors");
  }
  const ZipArchive zip(data, size, label);
  const ZipEntry& pkl = find_data_pkl(zip);
  const std::string prefix = pkl.name.substr(0, pkl.name.size() - std::string_view("data.pkl").size());
  check_metadata(zip, prefix);

  const PickledStateDict sd = read_pickled_state_dict(zip.stored_data(pkl), label + ": " + pkl.name);

  // Resolve every persistent id to its entry, as torch.load would, and check that the entry
  // holds as many elements as the id declares.
  std::vector<std::span<const uint8_t>> storage_bytes;
  storage_bytes.reserve(sd.storages.size());
  for (const PickledStorage& s : sd.storages) {
    const std::string entry_name = prefix + "data/" + std::string(s.key);
    const ZipEntry* e = zip.find(entry_name);
    if (!e) {
      fail(M3_ERR_FORMAT, label + ": storage " + quote_for_message(s.key) + " has no archive entry " +
                              quote_for_message(entry_name));
    }
    const std::span<const uint8_t> bytes = zip.stored_data(*e);
    const uint64_t esize = dtype_size(s.dtype);
    const auto numel = static_cast<uint64_t>(s.numel);  // >= 0, checked by the unpickler
    if (numel > bytes.size() / esize) {
      fail(M3_ERR_FORMAT, label + ": storage " + quote_for_message(s.key) + " declares " +
                              std::to_string(numel) + " " + dtype_name(s.dtype) + " elements, but entry " +
                              quote_for_message(entry_name) + " holds only " +
                              std::to_string(bytes.size()) + " bytes");
    }
    storage_bytes.push_back(bytes);
  }

  std::vector<TensorView> views;
  views.reserve(sd.tensors.size());
  for (const PickledTensor& t : sd.tensors) {
    const std::string at = label + ": tensor " + quote_for_message(t.name) + ": ";
    const PickledStorage& s = sd.storages[t.storage];
    const int64_t esize = static_cast<int64_t>(dtype_size(s.dtype));

    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) fail(M3_ERR_FORMAT, at + "negative size " + dims_string(t.shape));
      if (__builtin_mul_overflow(numel, d, &numel)) {
        fail(M3_ERR_FORMAT, at + "size " + dims_string(t.shape) + " overflows");
      }
    }
    // Views are used as dense row-major arrays. A dimension of size 1 never advances, so its
    // stride does not matter; an empty tensor touches no memory at all.
    if (numel > 0) {
      int64_t expected = 1;
      for (std::size_t i = t.shape.size(); i-- > 0;) {
        if (t.shape[i] != 1 && t.stride[i] != expected) {
          fail(M3_ERR_UNSUPPORTED, at + "non-contiguous strides " + dims_string(t.stride) + " for size " +
                                       dims_string(t.shape) + " (only row-major contiguous tensors are supported)");
        }
        expected *= t.shape[i];  // a partial product of numel: cannot overflow
      }
    }
    if (t.storage_offset < 0 || t.storage_offset > s.numel || numel > s.numel - t.storage_offset) {
      fail(M3_ERR_FORMAT, at + "size " + dims_string(t.shape) + " at storage offset " +
                              std::to_string(t.storage_offset) + " exceeds its storage " +
                              quote_for_message(s.key) + " of " + std::to_string(s.numel) + " elements");
    }
    // Both products are bounded by the storage size in bytes, checked above.
    const uint8_t* ptr = storage_bytes[t.storage].data() + t.storage_offset * esize;
    const auto nbytes = static_cast<std::size_t>(numel * esize);
    if (nbytes > 0 && reinterpret_cast<std::uintptr_t>(ptr) % static_cast<std::uintptr_t>(esize) != 0) {
      fail(M3_ERR_UNSUPPORTED, at + "data at file offset " + std::to_string(ptr - data) +
                                   " is not aligned to its " + std::to_string(esize) + "-byte " +
                                   dtype_name(s.dtype) + " elements");
    }

    TensorView v;
    v.name = std::string(t.name);
    v.dtype = s.dtype;
    v.shape = t.shape;
    v.data = ptr;
    v.nbytes = nbytes;
    views.push_back(std::move(v));
  }
  return views;
}

}  // namespace m3
