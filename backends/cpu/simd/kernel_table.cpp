// Picks the kernel tables this CPU can run. Compiled without arch flags: it only calls
// into the per-arch translation units after checking the CPU (GCC's cpu checks include
// the OS's saving of the wide registers).
#include "backends/cpu/simd/kernel_table.h"

#include <cstdlib>
#include <cstring>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace m3::cpu {

#if defined(__x86_64__)
const KernelTable* kernel_table_avx512bw();
const KernelTable* kernel_table_avx2();
const KernelTable* kernel_table_sse4_2();
const KernelTable* kernel_table_sse2();
#elif defined(__aarch64__)
const KernelTable* kernel_table_neon64();
#endif

#if defined(__x86_64__)
// F16C from CPUID itself (leaf 1, ECX bit 29): clang before 15 does not know
// __builtin_cpu_supports("f16c"). It is asked only with AVX2, whose check covers the OS side.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

std::vector<const KernelTable*> supported_kernel_tables() {
  std::vector<const KernelTable*> tables;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
    tables.push_back(kernel_table_avx512bw());
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    tables.push_back(kernel_table_avx2());
  if (__builtin_cpu_supports("sse4.2")) tables.push_back(kernel_table_sse4_2());
  tables.push_back(kernel_table_sse2());  // the x86-64 baseline
#elif defined(__aarch64__)
  tables.push_back(kernel_table_neon64());  // Advanced SIMD is part of the AArch64 baseline
#else
#error "the fast CPU kernels support x86-64 and AArch64"
#endif
  return tables;
}

const KernelTable& best_kernel_table() {
  // MAMBA3RT_CPU_KERNELS=<arch> (e.g. "sse2") picks a lesser supported table, for
  // benchmarks and for reproducing a user's machine.
  static const KernelTable* best = [] {
    const auto tables = supported_kernel_tables();
    if (const char* want = std::getenv("MAMBA3RT_CPU_KERNELS"); want && *want)
      for (const KernelTable* t : tables)
        if (std::strcmp(t->arch, want) == 0) return t;
    return tables.front();
  }();
  return *best;
}

}  // namespace m3::cpu
