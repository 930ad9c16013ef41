#!/usr/bin/env bash
# The README's "main job" command: installs the packages and builds; then opens the studio on the
# built-in demo model where a display exists, or (no display, or HEADLESS=1) generates a short clip with
# the demo model (random weights: every stage runs, the picture is structured noise) and checks the MP4
# with ffprobe. Real weights: see the README ("Using real Wan2.1 weights").
#   OUT=clip.mp4 HEADLESS=1 ./scripts/run-demo.sh     # where the clip goes (default: demo-output/demo.mp4)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
if [ -z "${HEADLESS:-}" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; } && [ -x build/bin/wan-studio ]; then
  exec ./build/bin/wan-studio --demo
fi
out=${OUT:-demo-output/demo.mp4}
mkdir -p "$(dirname "$out")"
./build/bin/wan generate \
  --prompt "a red fox runs through the snowy forest at dawn" \
  --size 256*160 --frames 17 --steps 10 --seed 42 --output "$out" --overwrite
echo "ffprobe: $(ffprobe -v error -count_frames -select_streams v:0 \
  -show_entries stream=codec_name,width,height,r_frame_rate,nb_read_frames -of csv=p=0 "$out")"
