// Measures the two ceilings a benchmark is judged against, on this machine, with a given
// number of threads: memory read bandwidth (decode is bound by it) and fp32 FMA throughput
// (prefill is bound by it).
#pragma once

#include <cstddef>
#include <string>

namespace cli {

struct BandwidthProbe {
  double best_gbs = 0;    // 1e9 bytes/s, best run
  double median_gbs = 0;  // median run
  std::size_t buffer_bytes = 0;
  int runs = 0;
};

// Sums a buffer of `buffer_bytes` (meant to be much larger than the last-level cache) with
// `threads` threads, each reading its own contiguous share, `runs` times after one warm-up
// pass. The buffer is returned to the system afterwards.
BandwidthProbe measure_read_bandwidth(int threads, std::size_t buffer_bytes, int runs);

struct FmaProbe {
  double best_gflops = 0;  // all threads together, best run
  const char* arch = "";   // the kernel table measured
};

// Runs the fast CPU kernels' register-only FMA loop on `threads` threads at once, each run
// lasting about `run_seconds`, `runs` times.
FmaProbe measure_fma_peak(int threads, double run_seconds, int runs);

// "model name" of /proc/cpuinfo, or "" where it is not available.
std::string cpu_model_name();

}  // namespace cli
