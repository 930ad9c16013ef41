#!/usr/bin/env bash
# The README's test command: installs what is missing, checks the C++ formatting, builds, and runs every
# CPU test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/check-format.sh
./scripts/build.sh
cd build
ctest --output-on-failure -j 2
