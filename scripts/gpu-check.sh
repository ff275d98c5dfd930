#!/usr/bin/env bash
# The GPU check (tests/GpuCheck), in two steps:
#   scripts/gpu-check.sh publish   here: Native AOT build into .gpu-check/ (a few MB; the GPU machine has no dotnet)
#   scripts/gpu-check.sh run       on the device (carry .gpu-check): finds cuBLAS/NCCL in the Python wheels, runs every check
# `run` prints "N passed, N failed", then the figures (llama3-8b decode tok/s at batch 1 and 64, and
# the HBM fraction for the detected card). Generated models go to /tmp (llama3-8b is 16 GB); $OUT,
# which the device tool sends back under strict limits, gets only the small result file.
# Extra arguments go to the binary (--quick skips llama3-8b).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  publish)
    rm -rf .gpu-check
    # Two native images: x86-64-v4 (the CPU reference on AVX-512 kernels) and baseline x64 for a
    # device host without AVX-512 (the CPU reference then runs the portable kernels: correct, slower).
    # Each gets its own obj folder so neither reuses the other's link.
    dotnet publish tests/GpuCheck -c Release -r linux-x64 -o .gpu-check -v q --nologo
    dotnet publish tests/GpuCheck -c Release -r linux-x64 -o .gpu-check/baseline -p:GpuCheckBaseline=true \
      -p:IntermediateOutputPath=obj/baseline/ -v q --nologo
    rm -f .gpu-check/*.dbg .gpu-check/*.pdb .gpu-check/baseline/*.dbg .gpu-check/baseline/*.pdb # symbols stay here; the carry stays small
    ls -la .gpu-check/loom-gpu-check .gpu-check/baseline/loom-gpu-check
    # Smoke test of the native image itself, with a CPU backend in the GPU's place (AOT-only failures show here, not in device time).
    smoke=.gpu-check/baseline/loom-gpu-check
    grep -qw avx512bw /proc/cpuinfo && smoke=.gpu-check/loom-gpu-check
    "$smoke" --cpu-standin --quick --models "${TMPDIR:-/tmp}/loom-gpu-check-standin" --deadline 120 | tail -n 3
    echo "device run: scripts/gpu-check.sh run   (carry: .gpu-check)"
    ;;
  run)
    bin=.gpu-check/loom-gpu-check
    # The x86-64-v4 image refuses to start without AVX-512; then the baseline one runs, whose CPU
    # reference picks the best kernels the baseline image can use.
    for f in avx512f avx512bw avx512cd avx512dq avx512vl; do
      if ! grep -qw "$f" /proc/cpuinfo; then
        echo "host CPU lacks $f: running the baseline image"
        bin=.gpu-check/baseline/loom-gpu-check
        break
      fi
    done
    if [ ! -f "$bin" ]; then echo "FAIL binary: $bin is missing (run 'scripts/gpu-check.sh publish' here and carry .gpu-check)"; echo "0 passed, 1 failed"; exit 1; fi
    # The copy to the device machine may drop the execute bit.
    chmod +x "$bin"
    # The AOT binary needs glibc >= 2.34.
    ldd --version 2>&1 | head -n 1 || true
    nv=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
    dirs=""
    for d in "$nv/cu13/lib" "$nv/cublas/lib" "$nv/nccl/lib" "$nv/cuda_nvrtc/lib"; do [ -d "$d" ] && dirs="$dirs:$d"; done
    export LOOM_CUDA_LIB_DIRS="${LOOM_CUDA_LIB_DIRS:-}${dirs}"
    echo "LOOM_CUDA_LIB_DIRS=$LOOM_CUDA_LIB_DIRS"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    out="${OUT:-/tmp/loom-gpu-check-out}"
    models=/tmp/loom-gpu-check
    # 290 s: the whole run, model generation included, must stay under 5 minutes; past that the
    # binary names the check that was running and prints the summary itself.
    "$bin" --require-gpu --deadline 290 --out "$out" --models "$models" "${@:2}"
    ;;
  *)
    echo "usage: scripts/gpu-check.sh publish|run [--quick]" >&2
    exit 2
    ;;
esac
