#!/usr/bin/env bash
# Configures and builds into build/ (executables in build/bin). Extra arguments go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
# Configure when there is no build yet, when the last configure failed (no build file), or when CMake
# arguments are given.
if [ ! -f build/build.ninja ] && [ ! -f build/Makefile ] || [ $# -gt 0 ]; then
  if [ -f build/CMakeCache.txt ]; then cmake -S . -B build "$@"
  else cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "$@"; fi
fi
cmake --build build -j "${WAN_BUILD_JOBS:-2}"
