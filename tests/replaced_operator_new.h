// The replaceable global allocation functions, every form counting the process's live heap
// bytes and allocations, with a hook the including test defines: before_allocation(n), which
// may throw std::bad_alloc to make that allocation fail. The library's own allocations come
// here too (the executable's definitions take precedence over libstdc++'s). Include it in one
// file of an executable.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

inline std::atomic<long long> g_live_bytes{0};
inline std::atomic<long long> g_allocations{0};

void before_allocation(std::size_t n);

namespace replaced_operator_new {
constexpr std::size_t kHeader = 16;  // the size, kept in front of the block (max_align_t)
inline void* allocate(std::size_t n) {
  before_allocation(n);
  auto* p = static_cast<std::size_t*>(std::malloc(n + kHeader));
  if (!p) throw std::bad_alloc();
  *p = n;
  g_live_bytes += static_cast<long long>(n);
  ++g_allocations;
  return reinterpret_cast<char*>(p) + kHeader;
}
inline void deallocate(void* p) noexcept {
  if (!p) return;
  auto* base = reinterpret_cast<std::size_t*>(static_cast<char*>(p) - kHeader);
  g_live_bytes -= static_cast<long long>(*base);
  std::free(base);
}
}  // namespace replaced_operator_new

void* operator new(std::size_t n) { return replaced_operator_new::allocate(n); }
void* operator new[](std::size_t n) { return replaced_operator_new::allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return replaced_operator_new::allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { replaced_operator_new::deallocate(p); }
void operator delete[](void* p) noexcept { replaced_operator_new::deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { replaced_operator_new::deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { replaced_operator_new::deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { replaced_operator_new::deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { replaced_operator_new::deallocate(p); }
