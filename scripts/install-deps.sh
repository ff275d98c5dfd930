#!/usr/bin/env bash
# Installs the system packages the tests use, idempotently: redis-server (cluster membership
# tests), NVRTC (regenerates the committed PTX; Debian non-free), qemu-user with the arm64
# cross libraries (the ARM64 kernel check) and python3-jinja2 (the chat template golden tests
# render with Python's own Jinja2, as transformers does). Node/npm come with the machine image;
# the tests fetch their npm packages themselves.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
ls /usr/lib/x86_64-linux-gnu/libnvrtc.so.11* >/dev/null 2>&1 || need+=(libnvrtc11.2)
# The ARM64 kernel check runs under user-mode emulation (scripts/cpu-check.sh).
if [ "$(uname -m)" = x86_64 ]; then
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  [ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-arm64-cross)
  [ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need+=(libstdc++6-arm64-cross)
fi
# Debian's interpreter by path: a python3 earlier on PATH (pyenv) does not see Debian's modules.
/usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1 || need+=(python3-jinja2)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then echo "install-deps: not root; skipping ${need[*]}" >&2; exit 0; fi
src=/etc/apt/sources.list.d/debian.sources
# NVRTC lives in non-free: enable contrib/non-free on the Debian sources once.
if [ -f "$src" ] && ! grep -q "non-free" "$src"; then
  sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$src"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || echo "install-deps: apt-get update failed" >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || echo "install-deps: could not install ${need[*]}; dependent tests will skip" >&2
