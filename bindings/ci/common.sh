# Shared by the binding test scripts (sourced, not run).
#
# Environment (set by bindings/CMakeLists.txt for CTest; the defaults fit a checkout built with
# scripts/bootstrap.sh, so the scripts also run by hand):
#   MAMBA3RT_LIB_DIR   directory of libmamba3rt.so           (default: <repo>/build)
#   MAMBA3RT_LIB       the library file itself               (default: $MAMBA3RT_LIB_DIR/libmamba3rt.so)
#   MAMBA3RT_MODEL     the bundled model                     (default: <repo>/models/default)
#   MAMBA3RT_HEADER    include/mamba3rt.h
#   MAMBA3RT_CLI       the mamba3rt CLI                      (default: $MAMBA3RT_LIB_DIR/mamba3rt)
#   BINDINGS_WORK      build outputs and caches (cargo target, Go caches, C# assemblies)
#                                                            (default: $MAMBA3RT_LIB_DIR/bindings)
#   BINDINGS_REQUIRE=1 a missing toolchain fails the test instead of skipping it (CI)

set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bindings="$repo/bindings"
export MAMBA3RT_LIB_DIR="${MAMBA3RT_LIB_DIR:-$repo/build}"
export MAMBA3RT_LIB="${MAMBA3RT_LIB:-$MAMBA3RT_LIB_DIR/libmamba3rt.so}"
export MAMBA3RT_MODEL="${MAMBA3RT_MODEL:-$repo/models/default}"
export MAMBA3RT_HEADER="${MAMBA3RT_HEADER:-$repo/include/mamba3rt.h}"
export MAMBA3RT_CLI="${MAMBA3RT_CLI:-$MAMBA3RT_LIB_DIR/mamba3rt}"
export BINDINGS_WORK="${BINDINGS_WORK:-$MAMBA3RT_LIB_DIR/bindings}"
mkdir -p "$BINDINGS_WORK"

# Nothing is fetched: no registry is reachable, and none is needed.
export CARGO_NET_OFFLINE=true
export CARGO_TARGET_DIR="$BINDINGS_WORK/rust-target"
export GOPROXY=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=1
export GOCACHE="$BINDINGS_WORK/go-cache" GOPATH="$BINDINGS_WORK/go-path"
# The Go package links the library found here and embeds the directory as an rpath.
export CGO_LDFLAGS="-L$MAMBA3RT_LIB_DIR -Wl,-rpath,$MAMBA3RT_LIB_DIR${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
export CGO_CFLAGS="-I$(dirname "$MAMBA3RT_HEADER")${CGO_CFLAGS:+ $CGO_CFLAGS}"

if [ ! -e "$MAMBA3RT_LIB" ]; then
  echo "error: $MAMBA3RT_LIB does not exist (build the C library first: scripts/bootstrap.sh)" >&2
  exit 1
fi

# skip REASON: exit 77 (CTest: skipped), or fail when BINDINGS_REQUIRE=1.
skip() {
  echo "SKIP: $*"
  if [ "${BINDINGS_REQUIRE:-0}" = 1 ]; then
    echo "FAIL: BINDINGS_REQUIRE=1, so a missing toolchain is an error"
    exit 1
  fi
  exit 77
}

# require COMMAND HOW-TO-INSTALL: skips unless COMMAND is on PATH.
require() {
  command -v "$1" > /dev/null 2>&1 || skip "$1 not found on PATH ($2)"
}

# The mcs invocations of the C# library, its tests and its example (outputs in $1).
build_csharp() {
  local out="$1" cs="$bindings/csharp"
  mkdir -p "$out"
  mcs -nologo -langversion:7.2 -warnaserror+ -target:library -doc:"$out/Mamba3Rt.xml" \
    -r:System.dll -r:System.Core.dll -out:"$out/Mamba3Rt.dll" "$cs"/Mamba3Rt/*.cs
  mcs -nologo -langversion:7.2 -warnaserror+ -target:exe -r:"$out/Mamba3Rt.dll" -r:System.dll -r:System.Core.dll \
    -out:"$out/Mamba3Rt.Tests.exe" "$cs"/tests/*.cs
  mcs -nologo -langversion:7.2 -warnaserror+ -target:exe -r:"$out/Mamba3Rt.dll" \
    -out:"$out/Stream.exe" "$cs"/examples/Stream/Stream.cs
}
