#!/usr/bin/env bash
# Long soak of the concurrency tests: runs the torture and stress suites (both lock modes) and
# the fuzz-corpus replays in a sanitizer build over and over for SECONDS (default 1800), then
# prints what ran. Usage: tests/soak.sh [SECONDS] [PRESET]   (PRESET: tsan or asan-ubsan)
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
preset=${2:-tsan}
cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" -j"$(nproc)" >/dev/null || exit 1
end=$((SECONDS + seconds))
rounds=0 failed=0 tests=0
while ((SECONDS < end)); do
  out=$(UEPOLL_TORTURE_SECONDS=5 UEPOLL_STRESS_ITERATIONS=20000 \
        ctest --preset "$preset" -L 'torture|stress|fuzz' -j"$(nproc)" 2>&1)
  rc=$?
  rounds=$((rounds + 1))
  n=$(grep -oE 'out of [0-9]+' <<<"$out" | grep -oE '[0-9]+' | tail -1)
  tests=$((tests + ${n:-0}))
  if ((rc != 0)); then
    failed=$((failed + 1))
    echo "round $rounds FAILED:"; grep -E 'Failed|\*\*\*|WARNING|ERROR' <<<"$out" | head -20
  fi
  echo "soak: round $rounds, $tests test runs, $failed failed rounds, $((end - SECONDS)) s left"
done
echo "soak ($preset, ${seconds} s): $rounds rounds, $tests test runs, $failed failed rounds"
((failed == 0))
