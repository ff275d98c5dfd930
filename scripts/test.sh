#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every test project.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dotnet >/dev/null; then
  echo "dotnet SDK 10 is required" >&2; exit 1
fi
scripts/install-deps.sh
dotnet build Cluster.sln -c Release --nologo -v q
scripts/check-ptx.sh
status=0
# A hung test fails with its name after 8 minutes (the longest test takes about 2) instead of
# stalling CI; no dump is written, the blame log names the test.
hang=(--blame-hang-timeout 8m --blame-hang-dump-type none)
dotnet test Cluster.sln -c Release --no-build --nologo -v q --logger "console;verbosity=normal" "${hang[@]}" "$@" | tee /tmp/loom-test.log || status=$?
# The kernel, oracle and engine suites again on every instruction-set leg this CPU can reach.
scripts/isa-legs.sh | tee -a /tmp/loom-test.log || status=1
# The ARM64 NEON path under qemu (last: its arm64 publish re-restores the kernel project).
scripts/cpu-check.sh | tee /tmp/loom-cpu-check.log || status=1
# One closing line for CI, summed over every test project, leg and the ARM64 check.
sum() { { grep -Eo "$1" "${@:2}" || true; } | { grep -Eo '[0-9]+' || true; } | awk '{s+=$1} END {print s+0}'; }
passed=$(( $(sum 'Passed: +[0-9]+' /tmp/loom-test.log) + $(sum '^[0-9]+ passed' /tmp/loom-cpu-check.log) ))
failed=$(( $(sum 'Failed: +[0-9]+' /tmp/loom-test.log) + $(sum ', [0-9]+ failed$' /tmp/loom-cpu-check.log) ))
skipped=$(sum 'Skipped: +[0-9]+' /tmp/loom-test.log)
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
