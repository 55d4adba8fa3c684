// One instruction set's kernel table. CMake compiles this file once per arch with that
// arch's -m flags and M3_KERNEL_ARCH / M3_KERNEL_TABLE_FN / M3_KERNEL_NAME defined.
#include "backends/cpu/simd/kernels_impl.h"

namespace m3::cpu {

const KernelTable* M3_KERNEL_TABLE_FN() {
  static const KernelTable table = simd::make_kernel_table<M3_KERNEL_ARCH>(M3_KERNEL_NAME);
  return &table;
}

}  // namespace m3::cpu
