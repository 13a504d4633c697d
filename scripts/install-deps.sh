#!/usr/bin/env bash
# Installs the Debian 12 packages uepoll needs, only those that are missing. Run as root.
set -euo pipefail

packages=(build-essential cmake pkg-config liburcu-dev libgtest-dev libgmock-dev
          libbenchmark-dev clang clang-format clang-tidy libclang-rt-14-dev spin
          python3.11 libpython3.11-testsuite xz-utils nginx-light wrk)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
