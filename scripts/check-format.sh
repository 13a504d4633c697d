#!/usr/bin/env bash
# Fails when a C++ file of the tree is not laid out as .clang-format says; --fix rewrites them.
# The layout is that of Debian 12's clang-format (14), which scripts/install-deps.sh installs.
#   scripts/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if [[ "${1:-}" == --fix ]]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
fi
