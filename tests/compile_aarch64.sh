#!/usr/bin/env bash
# Compile-checks the fast CPU kernels for AArch64 (NEON) with Debian's cross compiler:
# this machine cannot run them, but every build must keep them compiling warning-free.
# Exits 77 (skipped) without the cross compiler unless CROSS_REQUIRE=1.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
cxx=aarch64-linux-gnu-g++
if ! command -v "$cxx" >/dev/null; then
  echo "skipped: $cxx not installed (apt-get install g++-aarch64-linux-gnu)"
  [ "${CROSS_REQUIRE:-0}" = 1 ] && exit 1
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Only xsimd from the host's headers: the rest of /usr/include is x86-64 glibc.
mkdir -p "$work/include"
ln -s /usr/include/xsimd "$work/include/xsimd"
flags=(-std=c++20 -O2 -Wall -Wextra -Werror -I"$src" -I"$src/src" -I"$src/include" -isystem "$work/include")
"$cxx" "${flags[@]}" -c "$src/backends/cpu/simd/kernels_arch.cpp" -o "$work/kernels_neon64.o" \
  '-DM3_KERNEL_ARCH=xsimd::neon64' -DM3_KERNEL_TABLE_FN=kernel_table_neon64 '-DM3_KERNEL_NAME="neon64"'
"$cxx" "${flags[@]}" -c "$src/backends/cpu/simd/kernel_table.cpp" -o "$work/kernel_table.o"
echo "aarch64: NEON kernels and the kernel dispatch compile"
