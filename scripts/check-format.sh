#!/usr/bin/env bash
# Checks that every C++ file of the project is formatted as .clang-format says (Google base, 120
# columns), with Debian 12's clang-format 14; prints the files that are not and fails. --fix formats them.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" > /dev/null; then
  echo "check-format: $CLANG_FORMAT not found: install Debian's clang-format (scripts/install-deps.sh does)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files 'app/*.cpp' 'app/*.h' 'engine/*.cpp' 'engine/*.h' 'ui/*.cpp' 'ui/*.h' 'tests/*.cpp' 'tests/*.h')
if [ "${1:-}" = "--fix" ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$CLANG_FORMAT" --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} file(s) differ from .clang-format (run scripts/check-format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format says ($("$CLANG_FORMAT" --version | head -1))"
