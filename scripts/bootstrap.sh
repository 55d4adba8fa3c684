#!/usr/bin/env bash
# Installs the Debian build dependencies (when missing) and builds mamba3rt into build/.
# Usage: scripts/bootstrap.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config libgtest-dev nlohmann-json3-dev libpcre2-dev libxsimd-dev xtl-dev
  golang-go mono-mcs mono-runtime  # toolchains of the Go and C# binding tests
  libvulkan-dev glslc spirv-tools libspirv-cross-c-shared-dev  # the Vulkan backend's build
  mesa-vulkan-drivers vulkan-validationlayers  # its tests: lavapipe (Vulkan on the CPU), validation layers
  libcpp-httplib-dev)  # the streaming server (mamba3rt serve)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build
