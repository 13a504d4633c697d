#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the library's sources with a Clang build's compile commands.
#   scripts/check-tidy.sh [BUILD_DIR]   (default build/clang-tsa; build it first)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/clang-tsa}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
git ls-files 'src/*.cpp' | xargs -P"$(nproc)" -n4 clang-tidy -p "$build" --quiet >"$log" 2>&1 ||
  status=$?
# clang-tidy counts the warnings it suppressed; only the findings are worth showing.
grep -v ' warnings\? generated\.$' "$log" || true
exit "$status"
