#!/usr/bin/env bash
# The ARM64 (NEON) check under emulation: publishes tests/CpuCheck self-contained for linux-arm64
# and runs it with qemu-aarch64. It checks every op of every ISA the emulated CPU runs (neon,
# portable, scalar) against the scalar double-precision reference, plus a tiny-model forward, and
# prints "N passed, N failed". Needs qemu-user, libc6-arm64-cross, libstdc++6-arm64-cross
# (scripts/install-deps.sh); without them it says so and skips. On an ARM64 host it runs natively.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${CPU_CHECK_DIR:-/tmp/loom-cpu-check-arm64}
if [ "$(uname -m)" = aarch64 ]; then
  dotnet run -c Release --project tests/CpuCheck
  exit $?
fi
if ! command -v qemu-aarch64 >/dev/null || [ ! -d /usr/aarch64-linux-gnu/lib ]; then
  echo "ARM64 check: skipped, qemu-aarch64 or the arm64 cross libraries are missing (apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross)"
  exit 0
fi
rm -rf "$out"
dotnet publish tests/CpuCheck -c Release -r linux-arm64 --self-contained -o "$out" -v q --nologo || { echo "ARM64 check: publish FAILED"; exit 1; }
echo "=== ARM64 check (qemu-aarch64)"
QEMU_LD_PREFIX=/usr/aarch64-linux-gnu timeout 1200 qemu-aarch64 "$out/loom-cpu-check"
