#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build and test (run as root, or with sudo).
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-openmp          # LibTorch 1.13 (CPU) on OpenBLAS, not the reference BLAS
  libgloo-dev                                # headers for c10d's ProcessGroupGloo (CPU collectives)
  qt6-base-dev                               # Qt 6 Widgets and Test
  libspdlog-dev nlohmann-json3-dev libcli11-dev
  libsentencepiece-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
  xvfb xauth                                 # scripts/screenshots.sh (the studio in a virtual display)
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
