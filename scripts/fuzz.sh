#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for a given time each, one after the other, from the
# sanitizer build (scripts/sanitize.sh --build). README "Fuzzing and sanitizers".
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
# Seeds: the fixtures and the hostile files in tests/data, tests/fuzz/seeds, and the data.pkl of each
# .pth among them. The corpus grows in build-san/fuzz-corpus/<target> (kept between runs); an input
# that crashes, hangs (> 30 s), leaks or goes over 4 GiB is saved in build-san/fuzz-findings/<target>/
# and makes the script fail (inputs slower than 10 s are kept there too, as slow-unit-*, and listed).
# Prints one line per target: runs, coverage, corpus size, findings.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_safetensors fuzz_zip fuzz_unpickler fuzz_pth fuzz_dit_config fuzz_job_json fuzz_gguf)
./scripts/sanitize.sh --build >/dev/null

root=$PWD
seed() {  # seed TARGET FILE...: copies files into the target's corpus (once)
  local dir="build-san/fuzz-corpus/$1"
  shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/seed-$(echo "$f" | tr '/' '_')"; done
}
mapfile -t SAFETENSORS < <(find tests/data -name '*.safetensors' -size -200k)
mapfile -t PTH < <(find tests/data -name '*.pth' -size -300k)
mapfile -t CONFIGS < <(find tests/data -name 'config.json')
seed fuzz_safetensors "${SAFETENSORS[@]}"
seed fuzz_zip "${PTH[@]}"
seed fuzz_pth "${PTH[@]}"
seed fuzz_dit_config "${CONFIGS[@]}" tests/fuzz/seeds/dit_config/*
seed fuzz_job_json tests/fuzz/seeds/job_json/*
mapfile -t GGUF < <(find tests/data/gguf -name '*.gguf' -size -120k)
seed fuzz_gguf "${GGUF[@]}"
seed fuzz_unpickler tests/fuzz/seeds/unpickler/*  # earlier findings, run again each time
mkdir -p build-san/fuzz-corpus/fuzz_unpickler
for f in "${PTH[@]}"; do  # the pickles inside the archives
  python3 - "$f" "build-san/fuzz-corpus/fuzz_unpickler/seed-$(basename "$f").pkl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith("data.pkl"))
    open(sys.argv[2], "wb").write(z.read(name))
PY
done

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
printf '%-18s %10s %8s %8s %8s  %s\n' target runs exec/s cov corpus findings
for t in "${TARGETS[@]}"; do
  corpus="build-san/fuzz-corpus/$t"
  findings="build-san/fuzz-findings/$t"
  mkdir -p "$corpus" "$findings"
  dict=()
  case $t in fuzz_dit_config | fuzz_job_json) dict=(-dict="$root/tests/fuzz/json.dict") ;; esac
  log="build-san/fuzz-$t.log"
  set +e
  (cd "$findings" && "$root/build-san/fuzz/$t" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 \
     -rss_limit_mb=4096 -max_len=262144 -print_final_stats=1 "$root/$corpus" >"$root/$log" 2>&1)
  rc=$?
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || echo 0)
  speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || echo 0)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
  size=$(find "$corpus" -type f | wc -l)
  # libFuzzer also keeps inputs that took over 10 s as slow-unit-*: on a loaded machine that is the
  # machine, not the input (a real hang is a timeout-* after 30 s); they are listed, not counted.
  found=$(find "$findings" -type f ! -name 'slow-unit-*' | wc -l)
  slow=$(find "$findings" -type f -name 'slow-unit-*' | wc -l)
  if [ "$slow" -gt 0 ]; then echo "fuzz: $t kept $slow input(s) that took over 10 s (slow-unit-* in $findings)" >&2; fi
  printf '%-18s %10s %8s %8s %8s  %s\n' "$t" "$runs" "$speed" "$cov" "$size" "$found"
  if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
    status=1
    echo "fuzz: $t found a problem (exit $rc); inputs in $findings, log $log:" >&2
    grep -E "ERROR|SUMMARY|fuzz:|Test unit written" "$log" | head -20 >&2
  fi
done
exit $status
