#!/usr/bin/env bash
# The main job, the seed's experiment: builds uepoll in release mode and runs the headline
# benchmark (nginx-like HTTP server + wrk-like client with keepalive_requests 1, on uepoll fine,
# uepoll legacy and the kernel; then connection churn at 1..64 threads). Prints a table, writes
# out/headline.json and out/headline.png. About 3 minutes; --long runs five times longer.
# Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3 gnuplot-nox linux-perf
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target http_bench churn
exec python3 bench/headline.py --build build/release --out out "$@"
