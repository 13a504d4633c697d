#!/usr/bin/env bash
# Exhaustive check of the removal model (removal.pml) with spin, then of mutants that must fail.
# Usage: check.sh [path/to/removal.pml]. Environment: SPIN (default spin), CC (default cc),
# PAN_OPT (default -O0: pan.c compiles in under a second, -O2 takes ~6 s per run for no gain at
# this size).
# Exits non-zero when the model has an error, when a mutant is not caught, or when a search is
# incomplete (search depth or memory exhausted).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="${1:-$here/removal.pml}"
spin="${SPIN:-spin}"
cc="${CC:-cc}"
opt="${PAN_OPT:--O0}"
work="$(mktemp -d "${TMPDIR:-/tmp}/uepoll-model.XXXXXX")" || exit 2
trap 'rm -rf "$work"' EXIT
cp "$model" "$work/removal.pml" || exit 2
cd "$work" || exit 2

failures=0
total_states=0

# run NAME EXPECT DEFINES...: EXPECT is "pass" or "fail".
run() {
  local name="$1" expect="$2"; shift 2
  rm -f pan pan.* removal.pml.trail
  if ! "$spin" -a "$@" removal.pml >spin.log 2>&1; then
    cat spin.log; echo "FAIL $name: spin -a failed"; failures=$((failures + 1)); return
  fi
  if ! "$cc" $opt -DSAFETY -DMEMLIM=1024 -o pan pan.c >cc.log 2>&1; then
    cat cc.log; echo "FAIL $name: compiling pan failed"; failures=$((failures + 1)); return
  fi
  local start end out errors states depth
  start=$(date +%s.%N)
  out="$(./pan -m20000 -w24 2>&1)"
  end=$(date +%s.%N)
  errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
  states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' <<<"$out" | head -1)
  depth=$(sed -n 's/.*depth reached \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
  local secs; secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  if [[ -z "$errors" || -z "$states" ]]; then
    echo "$out"; echo "FAIL $name: could not read pan's result"; failures=$((failures + 1)); return
  fi
  total_states=$((total_states + states))
  local what; what="$(grep -m1 -E '^pan:1?:? *(assertion violated|invalid end state)|^pan:1:' <<<"$out")"
  if [[ "$expect" == pass ]]; then
    if [[ "$errors" != 0 ]] || grep -q -E 'max search depth too small|out of memory' <<<"$out"; then
      echo "$out"
      echo "FAIL $name ($*): $errors error(s) ${what:+- $what}"
      failures=$((failures + 1))
      return
    fi
    printf 'ok   %-28s %9s states, depth %4s, %ss\n' "$name" "$states" "$depth" "$secs"
  else
    if [[ "$errors" == 0 ]]; then
      echo "FAIL $name ($*): mutant not caught (${states} states)"
      failures=$((failures + 1))
      return
    fi
    printf 'ok   %-28s caught after %s states: %s\n' "$name" "$states" "$what"
  fi
}

echo "== the protocol as implemented (must hold)"
for legacy in 0 1; do
  for items in 1 2; do
    for walker in 0 1; do
      run "items=$items walker=$walker legacy=$legacy" pass \
        -DNITEMS=$items -DWALKER=$walker -DLEGACY=$legacy
    done
  done
done

echo "== with an EPOLL_CTL_ADD of F racing the rest (must hold)"
for legacy in 0 1; do
  run "add items=1 walker=0 legacy=$legacy" pass -DADD=1 -DNITEMS=1 -DWALKER=0 -DLEGACY=$legacy
done
run "add items=1 walker=1 legacy=0" pass -DADD=1 -DNITEMS=1 -DWALKER=1

echo "== mutants (each must be caught)"
run "B removes without pin" fail -DMUT_B_NOPIN
run "B removes without pin, legacy" fail -DMUT_B_NOPIN -DLEGACY=1
run "B puts pin under ctl_mutex" fail -DMUT_B_PUT_LOCKED
run "C puts instance under lock" fail -DMUT_C_PUT_LOCKED
run "items freed without RCU" fail -DMUT_NO_RCU -DWALKER=1
run "DEL unpins F before removing" fail -DMUT_A_UNPINNED
run "ADD unpins F before inserting" fail -DMUT_ADD_UNPINNED -DADD=1 -DNITEMS=1

echo "states explored in all: $total_states"
if ((failures > 0)); then
  echo "$failures check(s) FAILED"
  exit 1
fi
echo "all checks passed"
