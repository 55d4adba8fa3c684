#include "bench_process_memory.h"

#include <fstream>
#include <string>

namespace cli {
namespace {

// A "Key:   1234 kB" line of /proc/self/status, in bytes.
uint64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    try {
      return std::stoull(line.substr(prefix.size())) * 1024;
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

}  // namespace

uint64_t current_rss_bytes() { return status_kb("VmRSS"); }

uint64_t peak_rss_bytes() { return status_kb("VmHWM"); }

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace cli
