#!/usr/bin/env bash
# Memory under sustained connection churn: runs `churn` for SECONDS at each thread count and
# lock mode and samples the process's resident set every second. Prints the RSS after the first
# 5 s, the largest RSS seen, and the growth between them (the bound: 64 MiB).
#   bench/churn/rss.sh [CHURN_BINARY] [SECONDS] [THREADS...]
set -euo pipefail
churn=${1:-build/release/bench/churn/churn}
seconds=${2:-60}
shift 2 2>/dev/null || shift $#
threads=("$@")
((${#threads[@]})) || threads=(1 2 8 64)

printf '%-7s %4s %10s %10s %10s %s\n' mode T "RSS@5s MB" "max MB" "growth MB" "ops/s"
for mode in fine legacy; do
  for t in "${threads[@]}"; do
    out=$(mktemp)
    "$churn" --threads="$t" --modes="$mode" --seconds="$seconds" --repeat=1 --no-timing \
      > "$out" 2>&1 &
    pid=$!
    at5=0 max=0 elapsed=0
    while kill -0 "$pid" 2>/dev/null; do
      rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
      rss=${rss:-0}
      ((rss > max)) && max=$rss
      ((elapsed == 5)) && at5=$rss
      sleep 1
      elapsed=$((elapsed + 1))
    done
    wait "$pid" || { cat "$out"; exit 1; }
    ops=$(awk -v m="$mode" -v t="$t" '$1 == m && $2 == t { print $3; exit }' "$out")
    awk -v m="$mode" -v t="$t" -v a="$at5" -v x="$max" -v o="$ops" \
      'BEGIN { printf "%-7s %4d %10.1f %10.1f %10.1f %s\n", m, t, a / 1024, x / 1024, (x - a) / 1024, o }' 
    rm -f "$out"
  done
done
