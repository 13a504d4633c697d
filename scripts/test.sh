#!/usr/bin/env bash
# Checks the layout of the C++ sources (.clang-format), then builds and runs every test suite:
# the debug build (warnings as errors), the Clang build with thread-safety analysis (and
# clang-tidy's checks, .clang-tidy), AddressSanitizer+UBSan and ThreadSanitizer. Installs what
# is missing.
#   scripts/test.sh            all of it (what CI runs)
#   scripts/test.sh debug      one preset only (debug, clang-tsa, asan-ubsan, tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

presets=("$@")
((${#presets[@]})) || presets=(debug clang-tsa asan-ubsan tsan)
jobs=$(nproc)

echo "=== layout (scripts/check-format.sh)"
scripts/check-format.sh

for preset in "${presets[@]}"; do
  echo "=== ${preset}: build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j"$jobs"
  if [[ "$preset" == clang-tsa ]]; then
    echo "=== clang-tidy (scripts/check-tidy.sh)"
    scripts/check-tidy.sh build/clang-tsa
  fi
  echo "=== ${preset}: test"
  ctest --preset "$preset" -j"$jobs"
done
echo "=== all test presets passed: ${presets[*]}"
