#!/usr/bin/env bash
# The H200 check (tests/GpuCheck), in two steps:
#   scripts/gpu-check.sh publish   here: Native AOT build into .gpu-check/ (about 3 MB; the GPU machine has no dotnet)
#   scripts/gpu-check.sh run       on the device (carry .gpu-check): finds cuBLAS/NCCL in the Python wheels, runs every check
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  publish)
    dotnet publish tests/GpuCheck -c Release -r linux-x64 -o .gpu-check -v q --nologo
    ls -la .gpu-check/loom-gpu-check
    echo "device run: scripts/gpu-check.sh run   (carry: .gpu-check)"
    ;;
  run)
    nv=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
    dirs=""
    for d in "$nv/cu13/lib" "$nv/cublas/lib" "$nv/nccl/lib" "$nv/cuda_nvrtc/lib"; do [ -d "$d" ] && dirs="$dirs:$d"; done
    export LOOM_CUDA_LIB_DIRS="${LOOM_CUDA_LIB_DIRS:-}${dirs}"
    echo "LOOM_CUDA_LIB_DIRS=$LOOM_CUDA_LIB_DIRS"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    .gpu-check/loom-gpu-check --out "${OUT:-/tmp}/loom-gpu-check" "${@:2}"
    ;;
  *)
    echo "usage: scripts/gpu-check.sh publish|run [--quick]" >&2
    exit 2
    ;;
esac
