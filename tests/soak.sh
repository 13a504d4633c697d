#!/usr/bin/env bash
# Long soak of the concurrency tests: runs the torture and stress suites (both lock modes), the
# fault-injection, thread-exit and blocking tests and the fuzz-corpus replays in a sanitizer build over and over for
# SECONDS (default 1800), then prints what ran: rounds, test runs, failures, and the totals the
# tests report (operations, races won, faults injected).
# Usage: tests/soak.sh [SECONDS] [PRESET]   (PRESET: tsan or asan-ubsan)
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
preset=${2:-tsan}
cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" -j"$(nproc)" >/dev/null || exit 1
end=$((SECONDS + seconds))
rounds=0 failed=0 tests=0
declare -A total
while ((SECONDS < end)); do
  out=$(UEPOLL_TORTURE_SECONDS=5 UEPOLL_STRESS_ITERATIONS=20000 \
        ctest --preset "$preset" -L 'torture|stress|fuzz' -R '.' -V -j"$(nproc)" 2>&1;
        ctest --preset "$preset" -R 'FaultInjection|ThreadExit|Blocking|Reclaim' -V 2>&1)
  rc=$?
  rounds=$((rounds + 1))
  n=$(grep -oE 'out of [0-9]+' <<<"$out" | awk '{s += $3} END {print s + 0}')
  tests=$((tests + ${n:-0}))
  if grep -qE '\*\*\*Failed|ThreadSanitizer|AddressSanitizer|runtime error' <<<"$out"; then
    failed=$((failed + 1))
    echo "round $rounds FAILED:"; grep -E 'Failed|\*\*\*|WARNING|ERROR|runtime error' <<<"$out" | head -20
  fi
  # "12 rounds", "3 DELs won", "40 faults injected", ... as printed by the tests.
  while read -r count what; do
    total[$what]=$(( ${total[$what]:-0} + count ))
  done < <(grep -oE '[0-9]+ (rounds|DELs won|ADDs|writes|harvests|links made|ELOOP|reports|woken after close|faults injected|global mutex acquisitions|lost wake-ups)' <<<"$out")
  echo "soak: round $rounds, $tests test runs, $failed failed rounds, $((end - SECONDS)) s left"
done
echo "soak ($preset, ${seconds} s): $rounds rounds, $tests test runs, $failed failed rounds"
for what in "${!total[@]}"; do echo "  $what: ${total[$what]}"; done | sort
((failed == 0))
