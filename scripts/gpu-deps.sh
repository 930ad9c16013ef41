#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with apt): downloads the Debian packages that the GPU test machine lacks
# into .deps/debs (git-ignored), about 16 MB: the -dev packages of spdlog, fmt, nlohmann-json, CLI11,
# SentencePiece and zlib, and Qt 6 Core + Test with moc (for the GPU test suite; the studio is not built
# there). scripts/gpu-check.sh unpacks them there. FFmpeg is not carried (its dependency closure is ~200
# packages): the GPU build uses -DWAN_WITH_FFMPEG=OFF and writes PNG frames and latents.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
cd .deps/debs
rm -f ./*.deb
apt-get download libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev \
  libsentencepiece-dev libsentencepiece0 zlib1g-dev \
  qt6-base-dev qt6-base-dev-tools qmake6 qmake6-bin libqt6core6 libqt6test6 libicu72 libdouble-conversion3 libb2-1 libpcre2-16-0 \
  2>&1 | grep -v "^W: Download is performed unsandboxed" || true
ls -1 ./*.deb | wc -l | xargs echo "packages:"
du -sh . | cut -f1 | xargs echo "size:"
