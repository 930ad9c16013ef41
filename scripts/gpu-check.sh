#!/usr/bin/env bash
# Run ON THE GPU MACHINE (device tool, `carry: [".deps"]`, after scripts/gpu-deps.sh here): builds the
# engine and CLI against the LibTorch inside the installed PyTorch (CUDA), checks the CUDA path against
# the official-code fixtures, and benchmarks the DiT. Everything it prints also goes to $OUT/gpu-check.log.
#   scripts/gpu-check.sh [quick]     # quick: skip the 14B bench
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

echo "== unpack carried packages"
ROOT=$PWD/.deps/root
mkdir -p "$ROOT"
for f in .deps/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"

echo "== build"
start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DWAN_BUILD_GUI=OFF -DWAN_BUILD_TESTS=OFF \
  -DWAN_WITH_FFMPEG=OFF -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/usr" \
  -DCMAKE_CUDA_ARCHITECTURES=90 || exit 1
cmake --build build-gpu -j "$(nproc)" || exit 1
echo "build seconds: $(( $(date +%s) - start ))"
WAN=build-gpu/bin/wan

echo "== fixtures on cuda (relative L2 error against the official code's CPU outputs)"
for dtype in fp32 bf16; do
  for c in dit_t2v_small dit_t2v_padded t5_small vae_small clip_vision_small unipc_10_shift5 dpmpp_8_shift3 t2v_pipeline_small i2v_pipeline_small; do
    echo "-- $c $dtype"
    $WAN eval-case "tests/data/golden/$c" "/tmp/$c-$dtype.safetensors" --device cuda --dtype $dtype || echo "FAILED: $c $dtype"
  done
done

echo "== generate on cuda (pipeline fixture folder, PNG frames + latent)"
rm -rf /tmp/gen-frames
$WAN generate --model tests/data/golden/t2v_pipeline_small --prompt "a red fox runs through the snowy forest at dawn" \
  --negative "static, blurry, low quality" --size 64*48 --frames 9 --steps 6 --seed 42 --device cuda \
  --frames-dir /tmp/gen-frames --save-latent /tmp/gen-latent.safetensors && ls /tmp/gen-frames | wc -l

echo "== bench"
$WAN bench --device cuda --dtype bf16 --model 1.3B --size 832*480 --frames 81 --warmup 1 --forwards 3 --steps 2 \
  --json "$OUT/bench-1.3B.json"
if [ "${1:-}" != quick ]; then
  $WAN bench --device cuda --dtype bf16 --model 14B --size 832*480 --frames 81 --warmup 1 --forwards 2 --steps 1 \
    --json "$OUT/bench-14B.json"
fi

echo "== NCCL backend, one rank (the distributed path: launcher, worker, ProcessGroupNCCL, board)"
for dtype in fp32 bf16; do
  rm -f /tmp/nccl-$dtype.safetensors
  $WAN generate --world-size 1 --backend nccl --device cuda --dtype $dtype --model tests/data/golden/t2v_pipeline_small \
    --prompt "a red fox runs through the snowy forest at dawn" --negative "static, blurry, low quality" \
    --size 64*48 --frames 9 --steps 6 --seed 42 --frames-dir /tmp/nccl-frames-$dtype \
    --save-latent /tmp/nccl-$dtype.safetensors || echo "FAILED: nccl world 1 $dtype"
  python3 - "$dtype" <<'PY'
import json, struct, sys
import numpy as np
def read(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        info = header[name]
        f.seek(8 + n + info["data_offsets"][0])
        data = f.read(info["data_offsets"][1] - info["data_offsets"][0])
    assert info["dtype"] == "F32"
    return np.frombuffer(data, dtype=np.float32).reshape(info["shape"])
got = read(f"/tmp/nccl-{sys.argv[1]}.safetensors", "latent")
ref = read("tests/data/golden/t2v_pipeline_small/io.safetensors", "final_latent")
err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
print(f"nccl world 1 {sys.argv[1]}: final latent relative L2 error vs the official CPU reference: {err:.3e}")
PY
done

echo "== memory estimator vs measured GPU peaks (docs/MEMORY.md) =="
timeout 900 ./scripts/memory-accuracy.sh build-gpu cuda || echo "memory accuracy run failed"
