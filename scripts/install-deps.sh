#!/usr/bin/env bash
# Installs what the project needs to build and test on Debian 12:
#   1. the Debian packages (run as root, or with sudo; only what is missing);
#   2. LibTorch 2.x with CUDA: the `torch` wheel pinned in scripts/torch-requirements.txt, from the Python
#      package registry, into the git-ignored virtual environment .deps/venv (CMake finds it there).
# WAN_TORCH_VENV=DIR puts the environment elsewhere; WAN_PYTHON=python3.X picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  python3 python3-venv                       # the virtual environment that holds the torch wheel
  libgloo-dev                                # headers for c10d's ProcessGroupGloo (CPU collectives)
  qt6-base-dev                               # Qt 6 Widgets and Test
  libspdlog-dev nlohmann-json3-dev libcli11-dev
  libsentencepiece-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
  xvfb xauth                                 # scripts/screenshots.sh (the studio in a virtual display)
  clang-format                               # scripts/check-format.sh (Debian 12: clang-format 14)
  clang libclang-rt-14-dev                   # scripts/sanitize.sh, scripts/fuzz.sh: ASan, UBSan, libFuzzer
)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# LibTorch: the pinned torch wheel in a virtual environment. A python3 that already has the venv module
# (pyenv, or Debian's python3-venv above) is used as it is.
VENV=${WAN_TORCH_VENV:-.deps/venv}
PY=${WAN_PYTHON:-python3}
want=$(grep -E '^torch==' scripts/torch-requirements.txt | cut -d= -f3)
have=$(PYTHONWARNINGS=ignore "$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "Installing torch $want (LibTorch with CUDA, about 3 GB download) into $VENV"
  "$PY" -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
       -r scripts/torch-requirements.txt; then
    echo "install-deps: could not install torch $want from the package registry into $VENV (see pip's" \
         "message above); check the network or the registry settings (PIP_INDEX_URL) and run again" >&2
    exit 1
  fi
fi
PYTHONWARNINGS=ignore "$VENV/bin/python" - <<'PY'
import torch
v = torch.backends.cudnn.version() or 0
print(f"LibTorch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {v // 10000}.{v // 100 % 100}.{v % 100}) "
      f"in {torch.utils.cmake_prefix_path}")
PY
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "No CUDA toolkit (nvcc) on this machine: the build will be the CPU-only variant (see the README)."
fi
