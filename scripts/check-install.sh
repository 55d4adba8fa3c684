#!/usr/bin/env bash
# Installs a build into a temporary prefix and builds examples/minimal.c against it twice:
# through pkg-config and through CMake's find_package(mamba3rt). Then runs both.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" > /dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)

PKG_CONFIG_PATH="$libdir/pkgconfig" cc -Wall -Wextra -o "$tmp/minimal_pc" "$root/examples/minimal.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs mamba3rt)
LD_LIBRARY_PATH="$libdir" "$tmp/minimal_pc" "$root/tests/data/golden/siso_basic" > /dev/null

mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(consumer C)
find_package(mamba3rt REQUIRED)
add_executable(minimal_cmake "$root/examples/minimal.c")
target_link_libraries(minimal_cmake PRIVATE mamba3rt::mamba3rt)
CMAKE
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" > /dev/null
cmake --build "$tmp/consumer/build" > /dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/consumer/build/minimal_cmake" "$root/tests/data/golden/siso_basic" > /dev/null
echo "install check: pkg-config and find_package consumers built and ran"
