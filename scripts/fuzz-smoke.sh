#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", clang, build/fuzz) and runs each for a bounded time.
# Exits non-zero when a target crashes, leaks, times out on an input or fails an invariant; the
# reproducer is left in build/fuzz/artifacts/.
#   scripts/fuzz-smoke.sh                   30 s per target
#   FUZZ_SECONDS=120 scripts/fuzz-smoke.sh  longer
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
targets=(chp_frame_fuzz chp_replica_fuzz client_json_fuzz json_depth_fuzz)
build=build/fuzz

if [ ! -f "${build}/CMakeCache.txt" ]; then
  cmake --preset fuzz >/dev/null
fi
cmake --build "${build}" --target "${targets[@]}" chp_fuzz_seeds -j "${FUZZ_BUILD_JOBS:-2}"

# Working corpora (new inputs go there) start from generated seeds; the checked-in seeds under
# tests/fuzz/corpus/ are read as a second, read-only corpus.
mkdir -p "${build}/corpus" "${build}/artifacts"
"${build}/tests/fuzz/chp_fuzz_seeds" "${build}/corpus"

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
failed=()
for t in "${targets[@]}"; do
  echo "== ${t}: ${seconds} s"
  log="${build}/artifacts/${t}.log"
  if "${build}/tests/fuzz/${t}" -max_total_time="${seconds}" -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="${build}/artifacts/${t}-" \
      "${build}/corpus/${t}" "tests/fuzz/corpus/${t}" >"${log}" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE" "${log}" || true
    echo "== ${t}: ok"
  else
    tail -n 40 "${log}"
    echo "== ${t}: FAILED (log ${log}; reproducer in ${build}/artifacts/)"
    failed+=("${t}")
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz-smoke: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz-smoke: all targets ran ${seconds} s without a crash"
