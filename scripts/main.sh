#!/usr/bin/env bash
# The main job: builds uepoll in release mode and runs the demo (an echo server and its clients
# on uepoll's in-process sockets, then a user-written pollable object). Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target echo_demo custom_object
echo "=== echo server and clients on in-process sockets"
build/release/examples/echo_demo "$@"
echo "=== a user-written pollable object"
build/release/examples/custom_object
