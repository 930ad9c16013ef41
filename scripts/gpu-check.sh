#!/usr/bin/env bash
# Run ON THE GPU MACHINE, in one device call that fits 8 minutes (device tool: `carry: [".deps/debs"]`,
# after scripts/gpu-deps.sh here). Builds the CUDA variant with the project's CMake configuration
# against that machine's PyTorch (no studio, no FFmpeg: Qt Core/Test and the -dev packages come from
# .deps/debs), runs `ctest -L gpu` (fixtures on CUDA in fp32/bf16, SDPA back-ends, NCCL world 1 against
# the CPU reference, allocator peak against the estimator), then the benchmarks. Everything it prints
# also goes to $OUT/gpu-check.log; the bench figures to $OUT/bench-*.json.
#   scripts/gpu-check.sh [quick]     # quick: no benchmarks after the tests
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PY=$(command -v python3)
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

stamp "unpack carried packages"
ROOT=/tmp/wan-gpu-deps
mkdir -p "$ROOT"
for f in .deps/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"

stamp "build"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DWAN_BUILD_GUI=OFF -DWAN_WITH_FFMPEG=OFF \
  -DWAN_TESTS_GPU_ONLY=ON -DWAN_CUDA=ON -DWAN_TORCH_PYTHON="$PY" -DCMAKE_PREFIX_PATH="$ROOT/usr" || exit 1
cmake --build build-gpu -j "$(nproc)" || exit 1
build-gpu/bin/wan --version

stamp "ctest -L gpu"
(cd build-gpu && ctest -L gpu --output-on-failure -V) > "$OUT/ctest-gpu.log" 2>&1
status=$?
grep -E "^[0-9]+: (PASS|FAIL|SKIP|QINFO|XFAIL|Totals)|tests passed|Failed|Skipped|Passed" "$OUT/ctest-gpu.log"
echo "ctest -L gpu exit status: $status"
[ "${1:-}" = quick ] && exit $status

stamp "bench"
WAN=build-gpu/bin/wan
$WAN bench --device cuda --dtype bf16 --model 1.3B --size 832*480 --frames 81 --warmup 1 --forwards 3 --steps 1 \
  --attention sdpa,math --json "$OUT/bench-1.3B.json"
$WAN bench --device cuda --dtype bf16 --model 14B --layers 10 --size 1280*720 --frames 81 --warmup 1 --forwards 2 \
  --steps 0 --json "$OUT/bench-14B-10-blocks.json"
# Wan2.2: TI2V-5B at its official size (10 of 30 blocks), and A14B's expert swap from pinned host memory
# (20 of 40 blocks per expert: the copy scales with the blocks).
$WAN bench --device cuda --dtype bf16 --model 5B --layers 10 --size 1280*704 --frames 121 --warmup 1 --forwards 2 \
  --steps 0 --json "$OUT/bench-5B-10-blocks.json"
$WAN bench --device cuda --dtype bf16 --model A14B --layers 20 --size 832*480 --frames 5 --warmup 0 --forwards 1 \
  --steps 0 --idle-expert-on-host --json "$OUT/bench-A14B-20-blocks-swap.json"
# Issue 21's levers on the 1.3B, 10 steps each (the distill sampler its 4), one after the other.
for lever in "--steps 10" "--steps 10 --guidance 1" "--steps 4 --sampler distill --guidance 1" \
  "--steps 10 --cache magcache:0.12" "--steps 10 --cache teacache:0.08"; do
  # shellcheck disable=SC2086
  $WAN bench --device cuda --dtype bf16 --model 1.3B --size 832*480 --frames 81 --warmup 1 --forwards 1 \
    $lever | grep "DiT forwards" || true
done
stamp "done"
exit $status
