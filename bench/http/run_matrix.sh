#!/usr/bin/env bash
# The measurement matrix of bench/http: backends x server workers x client threads, 64
# connections, keepalive_requests 1, one JSON file per run.
#
#   bench/http/run_matrix.sh [BUILD_DIR] [OUT_DIR]
#   BACKENDS="fine legacy kernel" WORKERS="1 2" CLIENTS="1 2" DURATION=3 REPEAT=1 EXTRA="--timing"
#
# BUILD_DIR defaults to build/release; OUT_DIR to a new temporary directory. Each run is bounded
# by http_bench's own watchdog and by timeout(1). The load average is printed before each run:
# on a shared machine, compare runs taken under similar load only.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build/release}
out=${2:-$(mktemp -d /tmp/http_bench.XXXXXX)}
bin=$build/bench/http/http_bench
BACKENDS=${BACKENDS:-"fine legacy kernel"}
WORKERS=${WORKERS:-"1 2"}
CLIENTS=${CLIENTS:-"1 2"}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-3}
REPEAT=${REPEAT:-1}
EXTRA=${EXTRA:-}

if [ ! -x "$bin" ]; then
  echo "run_matrix.sh: $bin not built (cmake --build --preset release --target http_bench)" >&2
  exit 2
fi
mkdir -p "$out"
status=0
for rep in $(seq "$REPEAT"); do
  for backend in $BACKENDS; do
    for w in $WORKERS; do
      for t in $CLIENTS; do
        json="$out/${backend}-w${w}-t${t}-r${rep}.json"
        echo "# load $(cut -d' ' -f1-3 /proc/loadavg): $bin --backend=$backend --workers=$w" \
             "--client-threads=$t --connections=$CONNECTIONS --duration=$DURATION $EXTRA"
        # shellcheck disable=SC2086  # EXTRA is a list of options
        timeout $((${DURATION%.*} + 60)) "$bin" --backend="$backend" --workers="$w" \
          --client-threads="$t" --connections="$CONNECTIONS" --duration="$DURATION" \
          --json="$json" $EXTRA || { echo "# exit status $?"; status=1; }
      done
    done
  done
done
echo "# JSON results in $out"
exit $status
