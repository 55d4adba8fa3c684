#!/usr/bin/env bash
# The Rust, Go and C# suites against the ThreadSanitizer build of the library (issue #10): the
# threads the bindings start (Rust threads, goroutines, Mono threads and tasks) call into the
# instrumented libmamba3rt.so next to its own threads (the engine's scheduler, the CPU backend's
# pool). Run it after building the `mamba3rt` target of a build configured with
# -DMAMBA3RT_SANITIZE=thread by GCC (its libmamba3rt.so needs libtsan.so.N):
#   cmake --build build-tsan --target mamba3rt && bindings/ci/tsan_suite.sh
#
# Only the library is instrumented. ThreadSanitizer sees its synchronization and the pthread
# calls of the host (thread start and join, pthread mutexes, conditions, semaphores), not the
# host's own (Rust std's futex locks, channels and scoped threads, Mono's managed locks and
# tasks). A missing edge can only add reports, never hide one, and so:
#   - a report with a frame in libmamba3rt fails the run: a race in the library, a binding that
#     calls it without ordering its calls, or a test that orders them only through the host's own
#     synchronization (read both stacks; order such calls with a thread join instead);
#   - a report without one is between the host runtime's own threads (memory allocated on one
#     and freed on another after a Rust channel; Mono's GC and thread pool): printed, not counted.
# Each suite must pass, too.
#
# Environment: as common.sh, with MAMBA3RT_LIB_DIR defaulting to <repo>/build-tsan, and
#   MAMBA3RT_PLAIN_LIB_DIR  a regular build (default <repo>/build) for `go test -race`
#   TSAN_SUITES             the suites to run (default "rust go csharp")
# A missing toolchain skips its suite (exit 77 at the end) unless BINDINGS_REQUIRE=1.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export MAMBA3RT_LIB_DIR="${MAMBA3RT_LIB_DIR:-$(cd "$here/../.." && pwd)/build-tsan}"
source "$here/common.sh"
plain_lib_dir="${MAMBA3RT_PLAIN_LIB_DIR:-$repo/build}"

# The TSan runtime the library was linked with (GCC links it as a dependency of the library).
tsan_runtime="$(ldd "$MAMBA3RT_LIB" | awk '/libtsan\.so/ { print $3; exit }')"
if [ -z "$tsan_runtime" ] || [ ! -e "$tsan_runtime" ]; then
  skip "$MAMBA3RT_LIB does not depend on GCC's libtsan.so (not a GCC -fsanitize=thread build)"
fi
echo "library: $MAMBA3RT_LIB"
echo "runtime: $tsan_runtime"

logs="$BINDINGS_WORK/tsan-logs"
rm -rf "$logs"
mkdir -p "$logs"
failures=()
missing=()

# tsan_options SUITE: halt_on_error=0 collects every report of a run; exitcode=66 (the default)
# marks a run that reported anything.
tsan_options() {
  mkdir -p "$logs/$1"
  echo "halt_on_error=0:exitcode=66:second_deadlock_stack=1:log_path=$logs/$1/tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
}

# verdict SUITE RC OUTPUT PASS-PATTERN: the suite passed (its runner printed PASS-PATTERN and exited
# 0, or 66 for reports) and no report names libmamba3rt; a fatal ThreadSanitizer error fails.
verdict() {
  local suite="$1" rc="$2" output="$3" pattern="$4" files
  files=$(find "$logs/$suite" -name 'tsan.*' -type f | sort)
  if [ "$rc" != 0 ] && [ "$rc" != 66 ] || ! grep -Eq "$pattern" "$output"; then
    echo "FAIL  $suite: the suite failed (exit status $rc)"
    failures+=("$suite")
  fi
  [ -n "$files" ] || { echo "ok    $suite: no ThreadSanitizer report"; return 0; }
  # shellcheck disable=SC2086
  if grep -Eq "FATAL: ThreadSanitizer|ERROR: ThreadSanitizer|ThreadSanitizer:DEADLYSIGNAL|CHECK failed" $files; then
    echo "FAIL  $suite: ThreadSanitizer itself failed:"
    # shellcheck disable=SC2086
    grep -E -A20 "FATAL: ThreadSanitizer|ERROR: ThreadSanitizer|ThreadSanitizer:DEADLYSIGNAL|CHECK failed" $files | head -n 60 || true
    failures+=("$suite")
  fi
  # One report runs from its WARNING line to its SUMMARY line.
  # shellcheck disable=SC2086
  awk -v suite="$suite" -v verdicts="$logs/$suite.verdict" '
    /WARNING: ThreadSanitizer:/ { inside = 1; text = ""; ours = 0 }
    inside { text = text $0 "\n"; if (index($0, "(libmamba3rt.so")) ours = 1 }
    inside && /^SUMMARY: ThreadSanitizer:/ {
      inside = 0
      if (ours) { n_ours++; printf "%s", text > verdicts }
      else { n_host++; print "      not counted (no frame in libmamba3rt): " $0 }
    }
    END {
      if (inside) { n_ours++; printf "%s", text > verdicts }  # a report cut short counts
      printf "%d %d\n", n_ours, n_host > (verdicts ".counts")
    }' $files
  local n_ours n_host
  read -r n_ours n_host < "$logs/$suite.verdict.counts"
  if [ "$n_ours" -gt 0 ]; then
    echo "FAIL  $suite: $n_ours ThreadSanitizer report(s) with libmamba3rt frames ($n_host not counted):"
    cat "$logs/$suite.verdict"
    failures+=("$suite")
  else
    echo "ok    $suite: $n_host report(s) between the host runtime's own threads, none in libmamba3rt"
  fi
}

run_rust() {
  command -v cargo > /dev/null 2>&1 || { missing+=("cargo (rust)"); return 0; }
  # LD_PRELOAD: linked only through libmamba3rt, libtsan would load after libc and its
  # interceptors would not be used. Sound: std threads are pthreads (start and join seen), and
  # what std synchronizes on its own (futex locks, channels, scoped threads) can only add reports.
  local exe
  exe=$(cd "$bindings/rust" && cargo test -j1 --offline --locked -p mamba3rt --test api --no-run \
    --message-format=json | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1) || true
  [ -x "$exe" ] || { echo "FAIL  rust: no test executable"; failures+=("rust"); return 0; }
  local rc=0
  LD_PRELOAD="$tsan_runtime" TSAN_OPTIONS="$(tsan_options rust)" "$exe" > "$logs/rust.out" 2>&1 || rc=$?
  cat "$logs/rust.out"
  verdict rust "$rc" "$logs/rust.out" '^[0-9]+ passed, 0 failed$'
}

run_go() {
  command -v go > /dev/null 2>&1 || { missing+=("go"); return 0; }
  # The cgo package built with -fsanitize=thread, the setup Go supports for TSan-instrumented C
  # (misc/cgo/testsanitizers): libtsan is linked first, and cgo marks every C call as an acquire and
  # release of one variable, so goroutines that move between threads raise no false report (C calls
  # that overlap are still checked; calls ordered only in time are not). `go test -race` cannot
  # load this library: its own TSan runtime and libtsan in one process crash in __tsan_init.
  local exe="$BINDINGS_WORK/go-tsan.test" rc=0
  (cd "$bindings/go" &&
    CGO_CFLAGS="$CGO_CFLAGS -fsanitize=thread" CGO_LDFLAGS="-fsanitize=thread $CGO_LDFLAGS" \
      go test -p 1 -c -o "$exe" .) || { failures+=("go (build)"); return 0; }
  (cd "$bindings/go" && TSAN_OPTIONS="$(tsan_options go)" "$exe" -test.count=1 -test.v) > "$logs/go.out" 2>&1 || rc=$?
  grep -E '^(--- |PASS|FAIL|ok )' "$logs/go.out" || true
  verdict go "$rc" "$logs/go.out" '^ok   leak check'
  # The Go side with the Go race detector, against the regular library (C not instrumented).
  if [ -e "$plain_lib_dir/libmamba3rt.so" ]; then
    if (cd "$bindings/go" && CGO_LDFLAGS="-L$plain_lib_dir -Wl,-rpath,$plain_lib_dir" go test -p 1 -race -count=1 .); then
      echo "ok    go test -race (against $plain_lib_dir)"
    else
      echo "FAIL  go test -race (against $plain_lib_dir)"
      failures+=("go -race")
    fi
  else
    echo "note: $plain_lib_dir/libmamba3rt.so not found: go test -race not run"
  fi
}

run_csharp() {
  if ! command -v mcs > /dev/null 2>&1 || ! command -v mono > /dev/null 2>&1; then
    missing+=("mcs/mono (C#)")
    return 0
  fi
  # LD_PRELOAD into mono, which is neither instrumented nor symbolized (its runtime is linked into
  # /usr/bin/mono-sgen): its own reports show only mono-sgen frames and are not counted. Sound:
  # Mono starts and joins threads and wakes its finalizer thread with pthread calls TSan sees;
  # managed-only synchronization (Interlocked, Wait on a finished Task) can only add reports (the
  # cancel test joins a Thread rather than waiting for a Task for that reason).
  local out="$BINDINGS_WORK/csharp" rc=0
  build_csharp "$out" || { failures+=("csharp (build)"); return 0; }
  (cd "$out" && LD_PRELOAD="$tsan_runtime" TSAN_OPTIONS="$(tsan_options csharp)" mono Mamba3Rt.Tests.exe) \
    > "$logs/csharp.out" 2>&1 || rc=$?
  cat "$logs/csharp.out"
  verdict csharp "$rc" "$logs/csharp.out" '^[0-9]+ passed, 0 failed$'
}

for suite in ${TSAN_SUITES:-rust go csharp}; do
  echo "== $suite"
  start=$SECONDS
  "run_$suite"
  echo "   ($((SECONDS - start)) s)"
done

if [ ${#failures[@]} -gt 0 ]; then
  echo "FAIL: ${failures[*]} (logs in $logs)"
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  skip "not found on PATH: ${missing[*]} (the other suites passed)"
fi
echo "all passed"
