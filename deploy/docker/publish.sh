#!/usr/bin/env bash
# The one place the images' `dotnet publish` commands live. Both Dockerfiles run
#   deploy/docker/publish.sh <gateway|silo> <output-dir>
# and tests/Deploy.Tests (DockerPublishTests) runs the same script, so CI proves
# the publish step of every image works without a Docker engine.
set -euo pipefail
component="${1:?usage: publish.sh <gateway|silo> <output-dir>}"
out="${2:?usage: publish.sh <gateway|silo> <output-dir>}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
case "$component" in
  gateway) project="src/Gateway/Gateway.csproj" ;;
  silo)    project="src/Silo/Silo.csproj" ;;
  *) echo "publish.sh: unknown component '$component' (gateway|silo)" >&2; exit 2 ;;
esac
# A private artifacts folder (bin/obj) keeps this build apart from a developer's
# or a concurrent test run's src/*/bin and src/*/obj.
artifacts="$(mktemp -d "${TMPDIR:-/tmp}/loom-publish.XXXXXX")"
trap 'rm -rf "$artifacts"' EXIT
# Framework-dependent (the runtime comes from the base image), no apphost: the
# images start the app with `dotnet <assembly>.dll`.
dotnet publish "$root/$project" \
  --configuration Release \
  --output "$out" \
  --artifacts-path "$artifacts" \
  --no-self-contained \
  -p:UseAppHost=false \
  -p:DebugType=none \
  --nologo
