#!/usr/bin/env bash
# Runs the libFuzzer targets for a while each, adding new inputs to a scratch corpus, then
# (with --merge) minimizes them into the checked-in corpora.
#
#   tests/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET] [--merge] [TARGET...]
#
# Needs a Clang build (default build/clang-tsa; override with BUILD_DIR=...), e.g.
#   cmake --preset clang-tsa && cmake --build --preset clang-tsa -j2 --target capi_fuzz threads_fuzz
# A crash leaves crash-*/leak-* files in the current directory; replay one with
#   build/clang-tsa/tests/fuzz/<target> crash-... (or <target>_replay crash-... in any build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build/clang-tsa}
seconds=${1:-60}
shift || true
merge=0
targets=()
for a in "$@"; do
  case "$a" in
    --merge) merge=1 ;;
    *) targets+=("$a") ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(capi_fuzz threads_fuzz)

declare -A max_len=([capi_fuzz]=384 [threads_fuzz]=256)

for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/$t
  [ -x "$exe" ] || { echo "no $exe (build it with a Clang preset)" >&2; exit 2; }
  scratch=${SCRATCH_DIR:-$build/tests/fuzz/scratch}/$t
  mkdir -p "$scratch"
  echo "=== $t: ${seconds}s, scratch corpus $scratch"
  "$exe" -max_total_time="$seconds" -max_len="${max_len[$t]:-256}" -print_final_stats=1 \
    "$scratch" "$here/corpus/$t"
  if [ "$merge" = 1 ]; then
    echo "=== $t: merging into $here/corpus/$t"
    "$exe" -merge=1 -use_counters=0 -max_len="${max_len[$t]:-256}" "$here/corpus/$t" "$scratch"
  fi
done
