// Reading a whole (small) file into memory with every failure reported. std::ifstream and
// operator<< on a stream buffer turn read errors and out-of-memory into a quietly short
// string, which then surfaces as "malformed JSON"; this reports them as what they are.
#pragma once

#include <cstddef>
#include <string>

namespace m3 {

// The file's bytes. Throws m3::Error M3_ERR_IO (cannot open or read), M3_ERR_LIMIT_EXCEEDED
// (larger than max_bytes; `what` names the file's role in the message) or std::bad_alloc.
std::string read_whole_file(const std::string& path, std::size_t max_bytes, const char* what);

}  // namespace m3
