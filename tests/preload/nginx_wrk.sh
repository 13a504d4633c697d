#!/usr/bin/env bash
# nginx (Debian's, unmodified, one request per connection) against wrk, each in turn under the
# interposer while the other runs on the kernel, at 1 and 2 worker processes.
#
#   nginx_wrk.sh PRELOAD_SO                  every response checked; fails on a wrong body or
#                                            status, a socket error or a timeout
#   nginx_wrk.sh PRELOAD_SO --bench R SECS   requests/s, median of R alternating runs of SECS
#                                            seconds each, next to nginx and wrk on the kernel
set -euo pipefail
preload=$(readlink -f "$1"); shift
mode=check rounds=1 seconds=2
if [[ ${1:-} == --bench ]]; then
  mode=bench rounds=${2:-5} seconds=${3:-5}
fi
for tool in nginx wrk; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null ||
    { echo "nginx_wrk: needs $tool (scripts/install-deps.sh nginx-light wrk)"; exit 1; }
done

work=$(mktemp -d)
master=
cleanup() {
  [[ -n $master ]] && kill "$master" 2>/dev/null && wait "$master" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/logs"
body='hello from nginx'

# Counts what came back: a response is good when it is 200 with nginx's body.
cat > "$work/check.lua" <<EOF
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0 end
function response(status, headers, body)
  if status == 200 and body == "$body\n" then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("checked: requests %d good %d bad %d errors %d %d %d %d %d\n",
    summary.requests, g, b, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# start_nginx WORKERS PRELOAD_OR_EMPTY: a master and its workers on a free loopback port.
start_nginx() {
  local workers=$1 with=$2
  for _ in 1 2 3 4 5; do
    port=$((10000 + RANDOM % 20000))  # below the ephemeral ports wrk uses
    cat > "$work/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
master_process on;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "$body\n"; }
  }
}
EOF
    env ${with:+LD_PRELOAD="$with"} nginx -p "$work" -c "$work/nginx.conf" &
    master=$!
    for _ in $(seq 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
      fi
      kill -0 "$master" 2>/dev/null || break
      sleep 0.1
    done
    kill "$master" 2>/dev/null || true
    wait "$master" 2>/dev/null || true
    master=
  done
  echo "nginx_wrk: nginx did not start"; cat "$work/logs/error.log"; exit 1
}

stop_nginx() {
  kill "$master"; wait "$master" 2>/dev/null || true
  master=
}

# run WORKERS NGINX_PRELOAD WRK_PRELOAD: prints wrk's requests/s; in check mode also the counts.
run() {
  local workers=$1 server=$2 client=$3
  start_nginx "$workers" "$server"
  local script=()
  [[ $mode == check ]] && script=(-s "$work/check.lua")
  env ${client:+LD_PRELOAD="$client"} wrk -t2 -c64 -d"${seconds}s" --timeout 10s "${script[@]}" \
    "http://127.0.0.1:$port/" > "$work/wrk.out" 2>&1 || { cat "$work/wrk.out"; exit 1; }
  stop_nginx
}

requests_per_second() { awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.out"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

status=0
for workers in 1 2; do
  declare -A rps=()
  for _ in $(seq "$rounds"); do
    for arrangement in kernel nginx-under-interposer wrk-under-interposer; do
      server= client=
      [[ $arrangement == nginx-under-interposer ]] && server=$preload
      [[ $arrangement == wrk-under-interposer ]] && client=$preload
      run "$workers" "$server" "$client"
      rps[$arrangement]+="$(requests_per_second) "
      if [[ $mode == check ]]; then
        line=$(grep '^checked:' "$work/wrk.out")
        echo "workers $workers, $arrangement: $line"
        read -r _ _ requests _ good _ bad _ errors <<<"$line"
        errors=$(grep -o 'errors.*' <<<"$line" | tr -cd '1-9')
        if ((requests == 0 || good != requests || bad != 0)) || [[ -n $errors ]]; then
          echo "nginx_wrk: FAILED"; cat "$work/wrk.out"; tail "$work/logs/error.log"; status=1
        fi
      fi
    done
  done
  if [[ $mode == bench ]]; then
    base=$(tr ' ' '\n' <<<"${rps[kernel]}" | grep . | median)
    for arrangement in kernel nginx-under-interposer wrk-under-interposer; do
      m=$(tr ' ' '\n' <<<"${rps[$arrangement]}" | grep . | median)
      printf 'workers %d  %-24s %10.0f req/s  %.3fx kernel  (runs: %s)\n' "$workers" \
        "$arrangement" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN { print a / b }')" \
        "${rps[$arrangement]% }"
    done
  fi
  unset rps
done
exit $status
