#!/usr/bin/env bash
# Takes the README's screenshots in a real window under Xvfb: the studio idle, mid-run (progress bars and
# live preview) and with the player, on the demo model (world size 2, gloo), and the image-to-video demo
# with its start picture. Writes docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
command -v xvfb-run >/dev/null || { echo "xvfb-run is missing: apt-get install xvfb" >&2; exit 1; }
WAN_STUDIO_GPUS=${WAN_STUDIO_GPUS:-0:0} QT_QPA_PLATFORM=xcb \
  xvfb-run -a -s "-screen 0 1600x1000x24" "$BUILD/bin/wan-studio" --screenshots docs/screenshots
ls -l docs/screenshots
