#!/usr/bin/env bash
# Compares the memory estimator (`wan estimate --json`) with the peaks real runs report (the peak memory
# each rank publishes on the progress board: resident set on the CPU, allocator peak on a GPU).
# Usage: scripts/memory-accuracy.sh [BUILD_DIR] [--device cpu|cuda]   (prints a Markdown table)
set -euo pipefail
BUILD=${1:-build}
DEVICE=${2:-cpu}
WAN="$BUILD/bin/wan"
WORK=$(mktemp -d /tmp/wan-memacc.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BACKEND=gloo; [ "$DEVICE" = cpu ] || BACKEND=nccl

# model folders: the built-in demo model and a mid-size random model (1/6 of the 1.3B's width)
DEMO=$("$WAN" estimate --json --device cpu --world-size 1 >/dev/null; echo "${WAN_DEMO_MODEL_DIR:-$HOME/.local/share/wan-studio/demo-model}")
[ -d "$DEMO" ] || "$WAN" make-demo-model >/dev/null
MID="$WORK/mid-model"
"$WAN" make-demo-model "$MID" --dim 512 --layers 8 --ffn 2048 --t5-dim 512 --t5-layers 4 --t5-ffn 1024 --vae-dim 32 >/dev/null

echo '{"world_size": 1}' > "$WORK/world1.json"  # world 1 through the launcher, which reports peaks
echo "| model | size | frames | layout | estimate rank 0 (MiB) | measured rank 0 (MiB) | error | peak phase |"
echo "|---|---|---|---|---|---|---|---|"
run() {  # model-name model-dir size frames flags...
  local name=$1 dir=$2 size=$3 frames=$4; shift 4
  local est phase measured
  est=$("$WAN" estimate --json --device "$DEVICE" --model "$dir" --size "$size" --frames "$frames" --backend $BACKEND "$@" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); c=[c for c in d["rows"][-1]["cells"] if c["current"]][0]["estimate"]; print(c["peak_bytes"]/2**20, c["peak_phase"])')
  phase=${est#* }; est=${est%% *}
  measured=$("$WAN" generate --model "$dir" --prompt "a red fox running through snow" --size "$size" --frames "$frames" --steps 2 \
               --device "$DEVICE" --backend $BACKEND --seed 1 -o "$WORK/out.mp4" "$@" 2>&1 | sed -n 's/^\[rank 0\] peak memory \([0-9.]*\) MiB/\1/p')
  python3 -c "import sys; e,m=float('$est'),float('$measured'); print(f'| $name | $size | $frames | $* | {e:.0f} | {m:.0f} | {100*(e-m)/m:+.1f}% | $phase |')"
  rm -f "$WORK"/out.*
}
run demo "$DEMO" 256*256 9 --dist-config "$WORK/world1.json"
run demo "$DEMO" 256*256 9 --world-size 2 --ulysses 2
run demo "$DEMO" 480*272 17 --world-size 2 --cfg-parallel
run demo "$DEMO" 832*480 17 --dist-config "$WORK/world1.json"
run mid "$MID" 256*256 9 --dist-config "$WORK/world1.json"
run mid "$MID" 480*272 17 --world-size 2 --dit-fsdp --t5-fsdp
run mid "$MID" 480*272 17 --world-size 4 --ulysses 2 --ring 2
run mid "$MID" 832*480 9 --world-size 2 --dit-fsdp --sharding SHARD_GRAD_OP
