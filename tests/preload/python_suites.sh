#!/usr/bin/env bash
# Python's own event-loop suites (Debian's libpython3.11-testsuite), run unmodified with
# /usr/bin/python3.11 on the kernel and under the interposer: each must give the same result.
# Usage: python_suites.sh PRELOAD_SO TEST...
set -euo pipefail
preload=$1; shift
python=/usr/bin/python3.11
[[ -x $python && -d /usr/lib/python3.11/test ]] ||
  { echo "python_suites: needs python3.11 and libpython3.11-testsuite (scripts/install-deps.sh)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The test cases each module ran, how they ended, and regrtest's verdict.
outcome() {
  grep -E '^(Ran [0-9]+ tests?|OK|FAILED|Tests result:)' "$1" | sed -E 's/ in [0-9.]+s$//' |
    tr '\n' ' '
}
"$python" -m test -v "$@" > kernel.out 2>&1 || true
echo "kernel:        $(outcome kernel.out)"
status=0
for mode in "UEPOLL_PRELOAD_INET=off" "UEPOLL_PRELOAD_INET=loopback" "UEPOLL_PRELOAD_OBJECTS=0"; do
  env "$mode" LD_PRELOAD="$preload" "$python" -m test -v "$@" > preload.out 2>&1 || true
  echo "interposer ($mode): $(outcome preload.out)"
  if [[ "$(outcome kernel.out)" != "$(outcome preload.out)" ]]; then
    status=1
    tail -40 preload.out
  fi
done
exit $status
