#!/usr/bin/env bash
# The README's test command: installs what is missing, checks the C++ formatting, builds, runs every
# CPU test with CTest, then the sanitizer build's suites and the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/check-format.sh
./scripts/build.sh
(cd build && ctest --output-on-failure -j 2)
# The loader, unit and hostile-input suites again under AddressSanitizer + UndefinedBehaviorSanitizer,
# then each fuzz target for WAN_FUZZ_SECONDS (60 s). WAN_TEST_QUICK=1 skips both.
if [ "${WAN_TEST_QUICK:-0}" != 1 ]; then
  ./scripts/sanitize.sh
  ./scripts/fuzz.sh "${WAN_FUZZ_SECONDS:-60}"
fi
