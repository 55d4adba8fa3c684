// The process's resident memory, for the benchmark's RSS figures (Linux /proc; elsewhere
// the readers return 0 and the reset does nothing).
#pragma once

#include <cstdint>

namespace cli {

// Resident set size now (VmRSS), bytes.
uint64_t current_rss_bytes();
// The high-water mark (VmHWM), bytes.
uint64_t peak_rss_bytes();
// Restarts the high-water mark at the current RSS (/proc/self/clear_refs, Linux >= 4.0), so
// that memory used by an earlier phase (a probe's buffer) does not count. Returns false
// where that is not possible.
bool reset_peak_rss();

}  // namespace cli
