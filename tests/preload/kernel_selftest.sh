#!/usr/bin/env bash
# Linux's own epoll selftest (tools/testing/selftests/filesystems/epoll/epoll_wakeup_test.c),
# taken at test time from Debian's linux-source package (never copied into this tree), built
# with its harness, unedited, and run on the kernel and under the interposer in each mode.
# Every test must pass under the interposer; the kernel run is shown for comparison.
# Usage: kernel_selftest.sh PRELOAD_SO CACHE_DIR
set -euo pipefail
preload=$1 cache=$2
mkdir -p "$cache"
cd "$cache"
src=selftests/tools/testing/selftests
if [[ ! -f $src/filesystems/epoll/epoll_wakeup_test.c ]]; then
  pkg=""
  for candidate in linux-source-6.12 linux-source-6.1; do
    if apt-get download "$candidate" >/dev/null 2>&1 ||
       { apt-get update -qq >/dev/null 2>&1 && apt-get download "$candidate" >/dev/null 2>&1; }; then
      pkg=$candidate; break
    fi
  done
  [[ -n $pkg ]] || { echo "kernel_selftest: cannot download linux-source from Debian"; exit 1; }
  dpkg-deb --fsys-tarfile "${pkg}"_*.deb | tar -x --wildcards "./usr/src/${pkg}.tar.xz"
  rm -rf selftests && mkdir selftests
  tar -xJf "usr/src/${pkg}.tar.xz" -C selftests --strip-components=1 --wildcards \
    "${pkg}/tools/testing/selftests/filesystems/epoll/*" \
    "${pkg}/tools/testing/selftests/kselftest*"
  rm -rf usr "${pkg}"_*.deb
  echo "kernel_selftest: $pkg"
fi
cc -O2 -I"$src" "$src/filesystems/epoll/epoll_wakeup_test.c" -o epoll_wakeup_test -lpthread
summary() { grep -E '^# Totals' "$1" || echo "(no totals)"; }
timeout 600 ./epoll_wakeup_test > kernel.out 2>&1 || true
echo "kernel:                     $(summary kernel.out)"
status=0
for mode in "default" "UEPOLL_PRELOAD_OBJECTS=0" "UEPOLL_LOCK_MODE=legacy"; do
  env_args=()
  [[ $mode == default ]] || env_args=("$mode")
  if timeout 600 env "${env_args[@]}" LD_PRELOAD="$preload" ./epoll_wakeup_test > preload.out 2>&1; then
    echo "interposer ($mode): $(summary preload.out)"
  else
    echo "interposer ($mode): $(summary preload.out)"
    grep -E '^not ok|Expected|FAIL' preload.out | head -20
    status=1
  fi
done
exit $status
