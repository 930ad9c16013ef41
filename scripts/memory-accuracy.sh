#!/usr/bin/env bash
# Compares the memory estimator (`wan estimate --json`) with the peaks real runs report (the peak memory
# each rank publishes on the progress board: resident set on the CPU, allocator peak on a GPU), for
# rank 0 (which also decodes) and rank 1 (sampling only).
# Usage: scripts/memory-accuracy.sh [BUILD_DIR] [cpu|cuda]   (prints a Markdown table)
#        ONLY=demo-i2v scripts/memory-accuracy.sh ...        (the rows of one model)
set -euo pipefail
BUILD=${1:-build}
DEVICE=${2:-cpu}
WAN="$BUILD/bin/wan"
WORK=$(mktemp -d /tmp/wan-memacc.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BACKEND=gloo; [ "$DEVICE" = cpu ] || BACKEND=nccl

# Models: the built-in demo model; a mid-size one (VAE 32 wide); a wide, shallow DiT whose sampling
# outweighs its small VAE (vae 8).
DEMO="$WORK/demo"; MID="$WORK/mid"; WIDE="$WORK/wide"; DEMO_I2V="$WORK/demo-i2v"
PICTURE="$(cd "$(dirname "$0")/.." && pwd)/resources/samples/start.png"  # 640x360: 480x256 within 480*272
"$WAN" make-demo-model "$DEMO" >/dev/null
"$WAN" make-demo-model "$DEMO_I2V" --i2v >/dev/null
"$WAN" make-demo-model "$MID" --dim 512 --layers 8 --ffn 2048 --t5-dim 512 --t5-layers 4 --t5-ffn 1024 --vae-dim 32 >/dev/null
"$WAN" make-demo-model "$WIDE" --dim 1536 --layers 6 --ffn 8960 --t5-dim 512 --t5-layers 2 --t5-ffn 1024 --vae-dim 8 >/dev/null
echo '{"world_size": 1}' > "$WORK/world1.json"  # world 1 through the launcher, which reports peaks

echo "| model | size | frames | layout | rank | estimate (MiB) | measured (MiB) | error | estimated peak phase |"
echo "|---|---|---|---|---|---|---|---|---|"
run() {  # model-name model-dir size frames world flags...
  local name=$1 dir=$2 size=$3 frames=$4 world=$5; shift 5
  if [ -n "${ONLY:-}" ] && [ "$name" != "$ONLY" ]; then return; fi
  local flags=("$@") label="world $world ${*}"
  label=${label//$PICTURE/start.png}
  [ "$world" = 1 ] && flags=(--dist-config "$WORK/world1.json" "$@") || flags=(--world-size "$world" "$@")
  local log="$WORK/run.log"
  "$WAN" generate --model "$dir" --prompt "a red fox running through snow" --size "$size" --frames "$frames" --steps 2 \
    --device "$DEVICE" --backend $BACKEND --seed 1 -o "$WORK/out.mp4" "${flags[@]}" > "$log" 2>&1 || { tail -3 "$log"; return; }
  local ranks=0; [ "$world" -gt 1 ] && ranks="0 1"
  for r in $ranks; do
    local est measured
    est=$("$WAN" estimate --json --device "$DEVICE" --model "$dir" --size "$size" --frames "$frames" --backend $BACKEND --rank "$r" "${flags[@]}" |
          python3 -c 'import json,sys; d=json.load(sys.stdin); c=[c for c in d["rows"][-1]["cells"] if c["current"]][0]["estimate"]; print(c["peak_bytes"]/2**20, c["peak_phase"])')
    measured=$(sed -n "s/^rank $r: peak memory \([0-9.]*\) MiB/\1/p" "$log")
    python3 -c "e,m=float('${est% *}'),float('$measured'); print(f'| $name | $size | $frames | $label | $r | {e:.0f} | {m:.0f} | {100*(e-m)/m:+.1f}% | ${est#* } |')"
  done
  rm -f "$WORK"/out.*
}
run demo "$DEMO" 256*256 9 1
run demo "$DEMO" 256*256 9 2 --ulysses 2
run demo "$DEMO" 480*272 17 2 --cfg-parallel
run mid "$MID" 256*256 9 1
run mid "$MID" 480*272 17 2 --dit-fsdp --t5-fsdp
run mid "$MID" 480*272 17 4 --ulysses 2 --ring 2
run wide "$WIDE" 480*272 17 1
run wide "$WIDE" 480*272 17 2 --ulysses 2
run wide "$WIDE" 480*272 17 2 --dit-fsdp
run wide "$WIDE" 480*272 17 4 --dit-fsdp --sharding SHARD_GRAD_OP --ulysses 2 --ring 2
run wide "$WIDE" 832*480 17 2 --cfg-parallel --dit-fsdp
run demo-i2v "$DEMO_I2V" 480*272 17 1 --image "$PICTURE"
run demo-i2v "$DEMO_I2V" 480*272 17 2 --ulysses 2 --image "$PICTURE"
