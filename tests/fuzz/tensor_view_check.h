// Checks what a checkpoint reader promises about each TensorView it hands out, and reads every
// element through a pointer of the element's type, as the backends do: the size matches the
// shape, the data lies inside the input (or a copy the reader owns), and it is aligned for
// its dtype. ASan reports a view that runs past its buffer, UBSan a misaligned typed read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_check.h"
#include "model/tensor.h"

namespace fuzz {

template <class T>
uint64_t sum_elements(const void* data, std::size_t count) {
  const T* p = static_cast<const T*>(data);
  uint64_t sum = 0;
  for (std::size_t i = 0; i < count; ++i) {
    uint64_t bits = 0;
    const T v = p[i];  // the typed read itself is what is being checked
    std::memcpy(&bits, &v, sizeof v);
    sum += bits;
  }
  return sum;
}

// `owned(p, n)` says whether [p, p + n) lies in a buffer the reader owns (its aligned copies).
template <class Owned>
void check_tensor_view(const m3::TensorView& t, const uint8_t* input, std::size_t input_size, Owned owned) {
  const std::size_t elem = m3::dtype_size(t.dtype);
  FUZZ_CHECK(elem > 0);
  int64_t numel = 1;
  for (int64_t d : t.shape) {
    FUZZ_CHECK(d >= 0);
    FUZZ_CHECK(!__builtin_mul_overflow(numel, d, &numel));
  }
  FUZZ_CHECK(t.numel() == numel);
  FUZZ_CHECK(static_cast<uint64_t>(numel) * elem == t.nbytes);
  if (t.nbytes == 0) return;
  const auto* p = static_cast<const uint8_t*>(t.data);
  FUZZ_CHECK(p != nullptr);
  FUZZ_CHECK(reinterpret_cast<uintptr_t>(p) % elem == 0);
  const bool in_input = p >= input && t.nbytes <= input_size && p - input <= static_cast<std::ptrdiff_t>(input_size - t.nbytes);
  FUZZ_CHECK(in_input || owned(p, t.nbytes));

  const auto count = static_cast<std::size_t>(numel);
  volatile uint64_t sink = 0;
  switch (t.dtype) {
    case m3::DType::F64: sink = sum_elements<double>(p, count); break;
    case m3::DType::I64: sink = sum_elements<int64_t>(p, count); break;
    case m3::DType::F32: sink = sum_elements<float>(p, count); break;
    case m3::DType::I32: sink = sum_elements<int32_t>(p, count); break;
    case m3::DType::F16:
    case m3::DType::BF16:
    case m3::DType::I16: sink = sum_elements<uint16_t>(p, count); break;
    case m3::DType::I8:
    case m3::DType::U8:
    case m3::DType::Bool: sink = sum_elements<uint8_t>(p, count); break;
  }
  (void)sink;
}

}  // namespace fuzz
