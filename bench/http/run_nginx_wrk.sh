#!/usr/bin/env bash
# Real nginx (bench/http/nginx.conf: keepalive_requests 1, 2 workers, 100-byte body) driven by
# wrk over 127.0.0.1: the seed's scenario on the host kernel, for comparison with http_bench.
#
#   bench/http/run_nginx_wrk.sh            # 5 s, 64 connections, 2 threads, port 18080
#   DURATION=3 CONNECTIONS=64 THREADS=2 PORT=18080 bench/http/run_nginx_wrk.sh
#
# Installs nginx and wrk from the distribution when missing (needs root and apt-get), starts
# nginx under a temporary prefix, checks one response, runs wrk, stops nginx and prints wrk's
# report. Every step is bounded in time; nginx is stopped on any exit.
set -euo pipefail

PORT=${PORT:-18080}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need_install=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_install+=(nginx)
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
if [ ${#need_install[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "run_nginx_wrk.sh: missing ${need_install[*]}; install them (apt-get install nginx wrk)" >&2
    exit 2
  fi
  echo "installing ${need_install[*]}..." >&2
  timeout 300 apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${need_install[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

prefix=$(mktemp -d /tmp/uepoll-nginx.XXXXXX)
chmod 755 "$prefix"
sed "s/@PORT@/$PORT/g" "$here/nginx.conf" > "$prefix/nginx.conf"

stop_nginx() {
  if [ -f "$prefix/nginx.pid" ]; then
    local pid
    pid=$(cat "$prefix/nginx.pid")
    "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -s quit 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true  # the master: it takes its workers with it
      sleep 0.5
    fi
  fi
  rm -rf "$prefix"
}
trap stop_nginx EXIT

timeout 10 "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"

# Wait (at most 5 s) for the listener, then show one response.
response=""
for _ in $(seq 50); do
  if response=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT &&
      printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3" 2>/dev/null); then
    [ -n "$response" ] && break
  fi
  sleep 0.1
done
if [ -z "$response" ]; then
  echo "run_nginx_wrk.sh: nginx did not answer on 127.0.0.1:$PORT" >&2
  cat "$prefix/error.log" >&2 || true
  exit 1
fi
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*: //'), worker_processes 2, keepalive_requests 1, port $PORT"
echo "--- one response ($(printf '%s' "$response" | wc -c) bytes) ---"
printf '%s\n' "$response" | tr -d '\r'
echo "--- wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:$PORT/ ---"
timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
  "http://127.0.0.1:$PORT/"
