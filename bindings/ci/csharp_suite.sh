#!/usr/bin/env bash
# The C# binding's tests under Mono: compile the library (C# 7.2, warnings as errors, XML docs),
# the test runner (the header check of the DllImports, the API suite, the leak check) and the
# Stream example, then run the tests. The runner ends with "N passed, M failed".
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require mcs "apt-get install mono-mcs"
require mono "apt-get install mono-runtime"
out="$BINDINGS_WORK/csharp"
build_csharp "$out"
mono --version | head -n 1
cd "$out"
mono Mamba3Rt.Tests.exe
