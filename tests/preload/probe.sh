#!/usr/bin/env bash
# Runs the probe on the kernel, then under the interposer in each mode, and compares the
# transcripts: any line that differs is a place where the interposer is not Linux.
# Usage: probe.sh PROBE PRELOAD_SO
set -euo pipefail
probe=$1 preload=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$probe" > "$work/kernel" 2>&1
status=0
for mode in "default" "UEPOLL_PRELOAD_OBJECTS=0" "UEPOLL_LOCK_MODE=legacy" \
            "UEPOLL_PRELOAD_INET=loopback"; do
  env_args=()
  [[ $mode == default ]] || env_args=("$mode")
  env "${env_args[@]}" LD_PRELOAD="$preload" "$probe" > "$work/preload" 2>&1 || true
  if diff -u "$work/kernel" "$work/preload" > "$work/diff"; then
    echo "probe ($mode): $(wc -l < "$work/kernel") lines, identical to the kernel's"
  else
    echo "probe ($mode): differs from the kernel:"; cat "$work/diff"; status=1
  fi
done
exit $status
