#include "hardware_probe.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backends/cpu/simd/kernel_table.h"

namespace cli {
namespace {

using Clock = std::chrono::steady_clock;

// Runs body(t) on `threads` threads (the caller is thread 0) released together; returns the
// seconds from the release to the last thread's end.
double timed_parallel(int threads, const std::function<void(int)>& body) {
  std::atomic<bool> go{false};
  std::vector<Clock::time_point> ends(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  std::atomic<int> ready{0};
  for (int t = 1; t < threads; ++t)
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      body(t);
      ends[t] = Clock::now();
    });
  while (ready.load() != threads - 1) std::this_thread::yield();
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  body(0);
  ends[0] = Clock::now();
  for (auto& w : workers) w.join();
  const auto last = *std::max_element(ends.begin(), ends.end());
  return std::chrono::duration<double>(last - start).count();
}

// Eight independent sums: the compiler turns them into SIMD adds. The widest vectors the CPU
// has matter (an SSE2 loop reads ~15 % slower than an AVX2 one on the Zen 3 VM), so on x86-64
// the function is compiled for each and picked at load time.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t sum_words(const uint64_t* p, std::size_t n) {
  uint64_t a[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) a[k] += p[i + k];
  for (; i < n; ++i) a[0] += p[i];
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

}  // namespace

BandwidthProbe measure_read_bandwidth(int threads, std::size_t buffer_bytes, int runs) {
  threads = std::max(1, threads);
  runs = std::max(1, runs);
  const std::size_t words = std::max<std::size_t>(buffer_bytes / 8, static_cast<std::size_t>(threads) * 8);
  const std::size_t bytes = words * 8;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("bandwidth probe: cannot map " + std::to_string(bytes) + " bytes");
  auto* buf = static_cast<uint64_t*>(mem);
  auto share = [&](int t) { return std::pair(words * t / threads, words * (t + 1) / threads); };
  std::vector<uint64_t> sinks(static_cast<std::size_t>(threads) * 8);  // a cache line per thread
  // Each thread first touches (writes) the pages it reads later.
  timed_parallel(threads, [&](int t) {
    auto [a, b] = share(t);
    for (std::size_t i = a; i < b; ++i) buf[i] = i * 0x9e3779b97f4a7c15ull;
  });
  std::vector<double> gbs;
  for (int r = 0; r <= runs; ++r) {  // run 0 is a warm-up
    const double s = timed_parallel(threads, [&](int t) {
      auto [a, b] = share(t);
      sinks[static_cast<std::size_t>(t) * 8] += sum_words(buf + a, b - a);
    });
    if (r > 0) gbs.push_back(static_cast<double>(bytes) / s / 1e9);
  }
  munmap(mem, bytes);
  volatile uint64_t keep = 0;
  for (uint64_t v : sinks) keep = keep + v;
  std::sort(gbs.begin(), gbs.end());
  return {gbs.back(), gbs[gbs.size() / 2], bytes, runs};
}

FmaProbe measure_fma_peak(int threads, double run_seconds, int runs) {
  threads = std::max(1, threads);
  runs = std::max(1, runs);
  const m3::cpu::KernelTable& k = m3::cpu::best_kernel_table();
  const double flops_per_iteration = static_cast<double>(m3::cpu::kFmaProbeChains) * 2.0 * k.float_lanes;
  std::vector<float> sinks(static_cast<std::size_t>(threads) * 16);
  // Calibrate on one thread: grow the count until a call takes a measurable time.
  int64_t iterations = 1 << 14;
  for (;;) {
    const auto t0 = Clock::now();
    sinks[0] += k.fma_probe(iterations);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= 0.01 || iterations > (int64_t{1} << 40)) {
      iterations = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iterations) * run_seconds / s));
      break;
    }
    iterations *= 4;
  }
  double best = 0;
  for (int r = 0; r < runs; ++r) {
    const double s = timed_parallel(threads, [&](int t) { sinks[static_cast<std::size_t>(t) * 16] += k.fma_probe(iterations); });
    best = std::max(best, flops_per_iteration * static_cast<double>(iterations) * threads / s / 1e9);
  }
  volatile float keep = 0;
  for (float v : sinks) keep = keep + v;
  return {best, k.arch};
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    std::string name = line.substr(colon + 1);
    name.erase(0, name.find_first_not_of(" \t"));
    return name;
  }
  return "";
}

}  // namespace cli
