#!/usr/bin/env bash
# The main job, the seed's experiment: builds uepoll in release mode and runs the headline
# benchmark (nginx-like HTTP server + wrk-like client with keepalive_requests 1, on uepoll fine,
# uepoll legacy and the kernel; then connection churn at 1..64 threads and the wake-up ping-pong).
# Prints a table, writes out/headline.json and out/headline.png. About 4 minutes; --long runs
# five times longer.
# The C API rows (capi-fine, capi-legacy) are what a C program gets: the release build installed
# into build/release/installed and the benchmarks built against that package (bench/capi).
# Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3 gnuplot-nox linux-perf
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target http_bench churn micro_bench uepoll_shared \
  uepoll_static
prefix=$PWD/build/release/installed
cmake --install build/release --prefix "$prefix" >/dev/null
cmake -S bench/capi -B build/release/bench-capi -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/release/bench-capi -j"$(nproc)"
exec python3 bench/headline.py --build build/release --capi-build build/release/bench-capi \
  --out out "$@"
