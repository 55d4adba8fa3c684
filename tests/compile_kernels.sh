#!/usr/bin/env bash
# Compile-checks the fast CPU kernels in builds this machine's CMake build does not make:
#  - every x86-64 ISA at -O0 (Debug builds instantiate code differently and once broke), and
#  - AArch64 (NEON) with Debian's cross compiler: this machine cannot run them, but they must
#    keep compiling warning-free.
# The AArch64 part exits 77 (skipped) without the cross compiler unless CROSS_REQUIRE=1.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Only xsimd from the host's headers: for the cross compiler the rest of /usr/include is x86-64 glibc.
mkdir -p "$work/include"
ln -s /usr/include/xsimd "$work/include/xsimd"
flags=(-std=c++20 -Wall -Wextra -Werror -I"$src" -I"$src/src" -I"$src/include" -isystem "$work/include")
kernel="$src/backends/cpu/simd/kernels_arch.cpp"

if [ "$(uname -m)" = x86_64 ]; then
  while IFS='|' read -r arch isa_flags; do
    # shellcheck disable=SC2086
    g++ "${flags[@]}" -O0 $isa_flags -c "$kernel" -o "$work/k.o" \
      "-DM3_KERNEL_ARCH=xsimd::$arch" -DM3_KERNEL_TABLE_FN=kernel_table_check '-DM3_KERNEL_NAME="check"'
    echo "x86-64 -O0: $arch compiles"
  done <<'ISAS'
avx512bw|-mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl -mfma -mf16c -Wno-maybe-uninitialized
fma3<xsimd::avx2>|-mavx2 -mfma -mf16c
sse4_2|-msse4.2
sse2|
ISAS
fi

cxx=aarch64-linux-gnu-g++
if ! command -v "$cxx" >/dev/null; then
  echo "aarch64 skipped: $cxx not installed (apt-get install g++-aarch64-linux-gnu)"
  [ "${CROSS_REQUIRE:-0}" = 1 ] && exit 1
  exit 77
fi
"$cxx" "${flags[@]}" -O2 -c "$kernel" -o "$work/kernels_neon64.o" \
  '-DM3_KERNEL_ARCH=xsimd::neon64' -DM3_KERNEL_TABLE_FN=kernel_table_neon64 '-DM3_KERNEL_NAME="neon64"'
"$cxx" "${flags[@]}" -O2 -c "$src/backends/cpu/simd/kernel_table.cpp" -o "$work/kernel_table.o"
echo "aarch64: NEON kernels and the kernel dispatch compile"
