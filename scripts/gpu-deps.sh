#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with apt): downloads the Debian -dev packages that the GPU machine lacks
# into .deps/debs (git-ignored), about 2.6 MB, for scripts/gpu-check.sh to unpack there. FFmpeg is not
# carried (its dependency closure is ~200 packages): the GPU build uses -DWAN_WITH_FFMPEG=OFF and writes
# PNG frames and latents.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
cd .deps/debs
rm -f ./*.deb
apt-get download libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev \
  libsentencepiece-dev libsentencepiece0 zlib1g-dev 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
ls -1 ./*.deb | wc -l | xargs echo "packages:"
du -sh . | cut -f1 | xargs echo "size:"
