#!/usr/bin/env bash
# The per-ISA kernel objects must not define weak (mergeable) code symbols: the linker keeps
# one copy of a weak symbol for the whole library, possibly one compiled with -mavx512f, and
# a CPU without AVX-512 then dies of SIGILL in it (it happened: std::vector<short> in the
# int8 path, under the sanitizer build). Everything a kernel object defines must be local to
# it (templates in an unnamed namespace, no out-of-line std templates).
# usage: check_kernel_symbols.sh OBJECT...
set -euo pipefail
status=0
for obj in "$@"; do
  # W/w: weak, V/v: weak object, u: unique global; DW.ref.* is the EH personality pointer.
  bad=$(nm -C "$obj" | awk '$2 ~ /^[WwVvu]$/ && $3 !~ /^DW\.ref\./ {print}' || true)
  if [ -n "$bad" ]; then
    echo "check_kernel_symbols: $obj defines mergeable symbols:" >&2
    echo "$bad" | head -20 >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check_kernel_symbols: $# kernel objects define no mergeable symbols"
exit $status
