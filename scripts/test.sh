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
dotnet test Cluster.sln -c Release --no-build --nologo -v q --logger "console;verbosity=normal" "$@" | tee /tmp/loom-test.log || status=$?
# One closing line for CI, summed over every test project.
passed=$(grep -Eo 'Passed: +[0-9]+' /tmp/loom-test.log | awk "{s+=\$2} END {print s+0}" || true)
failed=$(grep -Eo 'Failed: +[0-9]+' /tmp/loom-test.log | awk "{s+=\$2} END {print s+0}" || true)
skipped=$(grep -Eo 'Skipped: +[0-9]+' /tmp/loom-test.log | awk "{s+=\$2} END {print s+0}" || true)
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
