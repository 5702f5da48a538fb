#!/usr/bin/env bash
# The unit and integration labels under ASan + UBSan: the `asan` preset (build/asan: -O1 -g1,
# asserts on, -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer on
# our targets). It builds only `chorus_unit_integration_tests` (tests/CMakeLists.txt): the test
# executables of those two labels and the binaries they start (chorusd, chorus-chp-server,
# chorus-snapshot, chorus-chat-example); no benchmarks, fuzzers, fault tests or e2e tools.
#
# Any sanitizer report fails the run. Every process (the test executables and the children they
# start) writes its reports to build/asan/sanitizer-logs/ (log_path) instead of stderr, so a
# report in a chorusd child fails the run even when the test that started it passes; the files
# are printed at the end. ASan stops at its first error (halt_on_error), UBSan too (the build
# has no recovery), LeakSanitizer checks every process that exits normally.
#
# Excluded tests: none (a test excluded here must be listed in EXCLUDE with its reason). Two
# assertions are compiled out under ASan (#if !defined(__SANITIZE_ADDRESS__)), both resident-set
# bounds that ASan's quarantine (freed blocks kept, 256 MiB by default) makes meaningless; the
# rest of each test runs:
# - ChpServerInproc.CS22_PeerThatNeverReadsHoldsAtMostItsBound: 198 MiB of growth against the
#   96 MiB bound; its pending-byte bounds still run.
# - NodeHardening.PipelinedLargePublishesStayBoundedInMemory: chorusd grew 311 MB against
#   100 MB (25 MB with quarantine_size_mb=16); "the node still answers" still runs.
#
#   scripts/asan-test.sh
#   ASAN_LABELS='unit' scripts/asan-test.sh   a subset
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/asan/CMakeCache.txt ]; then
  cmake --preset asan >/dev/null
fi
cmake --build build/asan -j "$(nproc)" --target chorus_unit_integration_tests

logs="$PWD/build/asan/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"

# EXCLUDE: a ctest -E regex of tests not run under ASan, each with its reason above it. Empty.
EXCLUDE=''

status=0
ctest --test-dir build/asan -L "${ASAN_LABELS:-^(unit|integration)$}" ${EXCLUDE:+-E "$EXCLUDE"} \
      --output-on-failure -j 2 || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "scripts/asan-test.sh: sanitizer reports:" >&2
  for f in "$logs"/*; do
    echo "=== $f" >&2
    cat "$f" >&2
  done
  status=1
fi
exit "$status"
