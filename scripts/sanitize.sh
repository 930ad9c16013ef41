#!/usr/bin/env bash
# The sanitizer build: the engine, the CLI, the worker, the loader and unit test suites and the fuzz
# targets built with clang, AddressSanitizer + UndefinedBehaviorSanitizer (every report fatal) and
# libFuzzer's coverage instrumentation, in build-san/ (CPU-only variant, no studio). Then it runs the
# suites listed below under the sanitizers. README "Fuzzing and sanitizers".
#   scripts/sanitize.sh            build, then run the suites
#   scripts/sanitize.sh --build    build only (scripts/fuzz.sh calls this)
set -euo pipefail
cd "$(dirname "$0")/.."
# The suites that read files and parse what users give (loaders, configs, jobs, the board), plus the
# hostile-file and out-of-memory checks of the CLI. The numerical suites run unsanitized in the main
# build (their work is LibTorch's, which is not instrumented; under ASan they only take longer).
SUITES=(tst_safetensors tst_pth tst_model_loading tst_tokenizer tst_dist_config tst_progress_board tst_estimate
        tst_samplers tst_gguf tst_lora tst_fp8_weights tst_fp8_kept tst_cli_generate tst_cli_outputs)
# The CLI suites' functions that run here (the rest sample whole videos: slow under the sanitizers).
declare -A FUNCTIONS=(
  [tst_cli_generate]="hostileFilesEndInOneErrorLine invalidSettingsLeaveNoOutput invalidUtf8PromptRefusedUpFront \
outOfMemoryInEachPhase"
  [tst_cli_outputs]="pathsThatAreNotFiles danglingLinkIsNotAFreeName inputsBeyondTheBounds"
  [tst_lora]="everyLayoutMergesTheSameChange diffsAndSeveralLoras refusesWhatDoesNotFit"
  [tst_fp8_kept]="ditForwardIsTheDequantizedForward loraPatchedWeightsAreDequantized")

for tool in clang clang++; do
  command -v $tool >/dev/null || { echo "sanitize: $tool not found: run scripts/install-deps.sh" >&2; exit 1; }
done
if [ ! -f build-san/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS="-gline-tables-only" -DWAN_CUDA=OFF -DWAN_BUILD_GUI=OFF -DWAN_FUZZ=ON
fi
FUZZ_TARGETS=(fuzz_safetensors fuzz_zip fuzz_unpickler fuzz_pth fuzz_dit_config fuzz_job_json fuzz_gguf)
cmake --build build-san -j "${WAN_BUILD_JOBS:-2}" --target wan wan-worker "${SUITES[@]}" "${FUZZ_TARGETS[@]}"
[ "${1:-}" = "--build" ] && exit 0

# LeakSanitizer stays off for the suites: LibTorch keeps its process-lifetime singletons (thread pools,
# registries) without freeing them. The fuzz targets check leaks per input (scripts/fuzz.sh).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-san
failed=()
for suite in "${SUITES[@]}"; do
  args=()
  [ -n "${FUNCTIONS[$suite]:-}" ] && read -r -a args <<<"${FUNCTIONS[$suite]}"
  echo "== $suite ${args[*]:-}"
  if ! QT_QPA_PLATFORM=offscreen QTEST_FUNCTION_TIMEOUT=900000 "bin/$suite" "${args[@]}" >"$suite.log" 2>&1; then
    failed+=("$suite")
    tail -40 "$suite.log"
  else
    grep -E "^Totals:" "$suite.log" || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize: failed under ASan + UBSan: ${failed[*]} (logs in build-san/<suite>.log)" >&2
  exit 1
fi
echo "sanitize: every suite passed under ASan + UBSan"
