#!/usr/bin/env bash
# Configures and builds into build/ (executables in build/bin). Extra arguments go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build build -j "${WAN_BUILD_JOBS:-2}"
