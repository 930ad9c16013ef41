#!/usr/bin/env bash
# The README's "main job" command. Until text-to-video generation lands (issue "Text-to-video from the
# command line"), the engine's main job is checking the port: run every bundled reference case of
# the official Wan2.1 code through `wan eval-case` and print the errors against the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for c in dit_t2v_small dit_t2v_padded t5_small vae_small; do
  for dtype in fp32 bf16; do
    ./build/bin/wan eval-case "tests/data/golden/$c" "$out/$c-$dtype.safetensors" --dtype "$dtype"
  done
done
