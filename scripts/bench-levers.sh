#!/usr/bin/env bash
# Fewer forwards (issue 21), measured in one run on this machine: each lever (guidance 1, the distill
# sampler, TeaCache and MagCache at several thresholds) against the plain run, on
#   1. the built-in demo model (`wan generate`, 256x256, 17 frames, 20 steps; distill: its 4): forwards run and taken from
#      the cache, sampling seconds, and the final latent's relative L2 error against the plain run;
#   2. a 1.3B-shaped random model (`wan bench --model 1.3B --layers 3`: the 1.3B's blocks, 3 of 30; with
#      random weights TeaCache's decisions say little, MagCache's follow its curve alone):
#      sampling seconds and forwards;
#   3. the Wan2.1 pipeline fixture (tests/data/golden/t2v_pipeline_small, 20 steps): the error each cache
#      threshold introduces in the final latent.
# Usage: scripts/bench-levers.sh [BUILD_DIR]   (prints Markdown tables; needs python3 for the errors)
set -euo pipefail
BUILD=${1:-build}
WAN="$BUILD/bin/wan"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK=$(mktemp -d /tmp/wan-levers.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$WAN" make-demo-model "$WORK/demo" >/dev/null

# Relative L2 distance of two saved latents (safetensors, one float32 tensor each).
rel() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    k = [k for k in h if k != '__metadata__'][0]; s, e = h[k]['data_offsets']
    return struct.unpack('<%df' % ((e - s) // 4), b[8 + n + s:8 + n + e])
x, r = load(sys.argv[1]), load(sys.argv[2])
print('%.2e' % ((sum((a - b) ** 2 for a, b in zip(x, r)) / sum(b * b for b in r)) ** 0.5))
PY
}

# name|flags (the plain run's are none)
levers=("plain|" "guidance 1|--guidance 1" "distill (4 steps, guidance 1)|--sampler distill"
        "teacache:0.05|--cache teacache:0.05" "teacache:0.1|--cache teacache:0.1" "teacache:0.2|--cache teacache:0.2"
        "magcache:0.06|--cache magcache:0.06" "magcache:0.12|--cache magcache:0.12" "magcache:0.24|--cache magcache:0.24")

generate_table() {  # title model-dir size frames steps
  local title=$1 model=$2 size=$3 frames=$4 steps=$5
  echo
  echo "### $title"
  echo
  echo "| lever | DiT forwards | from the cache | sampling (s) | final latent vs plain |"
  echo "|---|---|---|---|---|"
  local i=0
  for entry in "${levers[@]}"; do
    IFS='|' read -r name flags <<<"$entry"
    local step_flags=(--steps "$steps")
    [ "$flags" = "--sampler distill" ] && step_flags=()  # its own 4 steps
    # shellcheck disable=SC2086
    "$WAN" generate --model "$model" --prompt "a red fox runs through the snowy forest at dawn" --size "$size" \
      --frames "$frames" "${step_flags[@]}" --seed 42 $flags --save-latent "$WORK/l$i.safetensors" \
      -o "$WORK/o.mp4" --overwrite >"$WORK/log" 2>&1 || { echo "| $name | failed: $(tail -1 "$WORK/log") |"; continue; }
    local line forwards cached seconds err="-"
    line=$(grep '^time:' "$WORK/log")
    seconds=$(sed -E 's/.*sampling ([0-9.]+) s.*/\1/' <<<"$line")
    forwards=$(sed -E 's/.*\(([0-9]+) DiT forwards.*/\1/' <<<"$line")
    cached=$(grep -oE '[0-9]+ of them with the blocks from the cache' <<<"$line" | cut -d' ' -f1 || true)
    [ "$i" -gt 0 ] && err=$(rel "$WORK/l$i.safetensors" "$WORK/l0.safetensors")
    [ "$name" = "distill (4 steps, guidance 1)" ] && err="$err (another sampler)"
    echo "| $name | $forwards | ${cached:-0} | $seconds | $err |"
    i=$((i + 1))
  done
}

generate_table "Demo model, 256x256, 17 frames, 20 steps (wan generate)" "$WORK/demo" "256*256" 17 20

echo
echo "### 1.3B-shaped random model, 3 of 30 blocks, 256x256, 9 frames, 10 steps (wan bench)"
echo
echo "| lever | DiT forwards | from the cache | sampling (s) |"
echo "|---|---|---|---|"
for entry in "${levers[@]}"; do
  IFS='|' read -r name flags <<<"$entry"
  args=(--steps 10)
  case "$flags" in
    "--guidance 1") args+=(--guidance 1) ;;
    "--sampler distill") args=(--steps 4 --sampler distill --guidance 1) ;;
    --cache*) args+=(--cache "${flags#--cache }") ;;
  esac
  out=$("$WAN" bench --model 1.3B --layers 3 --size 256*256 --frames 9 --forwards 1 --warmup 1 "${args[@]}" 2>&1 |
        grep 'DiT forwards' | tail -1 || true)
  forwards=$(sed -E 's/.*: ([0-9]+) DiT forwards.*/\1/' <<<"$out")
  cached=$(sed -E 's/.*, ([0-9]+) with the blocks.*/\1/' <<<"$out")
  seconds=$(sed -E 's/.*cache, ([0-9.]+) s$/\1/' <<<"$out")
  echo "| $name | $forwards | $cached | $seconds |"
done

generate_table "Pipeline fixture t2v_pipeline_small (64x48, 9 frames), 20 steps: the error of each lever" \
  "$ROOT/tests/data/golden/t2v_pipeline_small" "64*48" 9 20
