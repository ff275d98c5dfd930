#!/usr/bin/env bash
# Regenerates the PTX from src/Kernels/Cuda/Kernels/*.cu with NVRTC into a temp folder and fails if
# it differs from the committed copy (which the Kernels assembly embeds).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dotnet run -c Release --project tests/Tools -- ptx build src/Kernels/Cuda/Kernels "$tmp" >/dev/null
status=0
for f in "$tmp"/*.ptx; do
  name=$(basename "$f")
  if ! cmp -s "$f" "src/Kernels/Cuda/Kernels/$name"; then
    echo "check-ptx: $name differs from a fresh NVRTC build; run: dotnet run --project tests/Tools -c Release -- ptx build src/Kernels/Cuda/Kernels" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check-ptx: committed PTX matches NVRTC ($(ls "$tmp" | wc -l) modules)"
exit $status
