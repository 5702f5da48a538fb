#!/usr/bin/env bash
# Builds the ASan + UBSan preset (build/asan: Debug, -fsanitize=address,undefined on our targets,
# no benchmarks) and runs the unit and integration labels under it. Any sanitizer report fails the
# run: UBSan halts on the first error (the asan preset does not build with
# -fno-sanitize-recover), ASan always does; the chorusd children the tests start inherit both.
#   scripts/asan-test.sh
#   ASAN_LABELS='unit' scripts/asan-test.sh   a subset
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh asan
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
ctest --test-dir build/asan -L "${ASAN_LABELS:-unit|integration}" --output-on-failure \
      --timeout 600 -j 2
