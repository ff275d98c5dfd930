#!/usr/bin/env bash
# Runs the CPU kernel parity suites, the llama.cpp oracle and one engine end-to-end test again
# under each instruction-set leg this machine can reach, forced with the runtime's knobs:
#   avx2      DOTNET_EnableAVX512=0     (AVX-512 machines only; .NET 10 reads this name, not ...AVX512F)
#   portable  DOTNET_EnableAVX2=0       (x86: Vector128 only)
#   scalar    DOTNET_EnableHWIntrinsic=0 (no hardware vectors at all)
#   avx2-maddubs  DOTNET_EnableAVX512=0 DOTNET_EnableAVXVNNI=0 (CPUs with AVX-VNNI only: the quantized
#             kernels' vpmaddubsw fallback, which AVX2 CPUs without VNNI run; quantized suites only)
# The runtime ignores knob names it does not know, so every leg sets LOOM_EXPECT_ISA and a test
# inside each test process asserts which implementation actually ran. Needs a Release build.
# Usage: scripts/isa-legs.sh [extra dotnet test args]; output is meant to be tee'd into the test log.
set -uo pipefail
cd "$(dirname "$0")/.."
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
arch=$(uname -m)
has() { [[ " $flags " == *" $1 "* ]]; }

legs=()
if [ "$arch" = x86_64 ]; then
  if has avx512f && has avx2 && has fma; then legs+=("avx2|avx2||all|DOTNET_EnableAVX512=0 DOTNET_EnableAVX512F=0")
  else echo "ISA leg avx2 (DOTNET_EnableAVX512=0): skipped, this CPU has no avx512f, so the default run already is the avx2 path"; fi
  if has avx_vnni && has avx2 && has fma; then legs+=("avx2-maddubs|avx2|vpmaddubsw|quant|DOTNET_EnableAVX512=0 DOTNET_EnableAVX512F=0 DOTNET_EnableAVXVNNI=0")
  else echo "ISA leg avx2-maddubs (DOTNET_EnableAVXVNNI=0): skipped, this CPU has no avx_vnni, so the avx2 path already uses vpmaddubsw"; fi
  if has avx2; then legs+=("portable|portable||all|DOTNET_EnableAVX2=0")
  else echo "ISA leg portable (DOTNET_EnableAVX2=0): skipped, this CPU has no avx2, so the default run already is the portable path"; fi
else
  echo "ISA legs avx2/portable: skipped on $arch (x86 only)"
fi
legs+=("scalar|scalar||all|DOTNET_EnableHWIntrinsic=0")

# A leg is name|expected isa|expected int8 dot (empty: not checked)|suites (all, or quant only)|knobs.
kernels='FullyQualifiedName~Loom.Kernels.Tests.LinearTests.|FullyQualifiedName~Loom.Kernels.Tests.QuantTests.|FullyQualifiedName~Loom.Kernels.Tests.AttentionTests.|FullyQualifiedName~Loom.Kernels.Tests.ElementwiseTests.|FullyQualifiedName~IsaLeg'
silo='FullyQualifiedName~Oracle|FullyQualifiedName~LlamaModelTests.LogitsMatch|FullyQualifiedName~EngineLoopTests.EveryRequestInAMixedContinuousBatchMatchesItsSoloRun|FullyQualifiedName~IsaLeg'
quant_kernels='FullyQualifiedName~Loom.Kernels.Tests.QuantTests.|FullyQualifiedName~IsaLeg'
quant_silo='FullyQualifiedName~GgufOracle|FullyQualifiedName~IsaLeg'
status=0
for leg in "${legs[@]}"; do
  IFS='|' read -r name isa dot scope knobs <<< "$leg"
  echo "=== ISA leg $name ($knobs)"
  k=$kernels; s=$silo
  if [ "$scope" = quant ]; then k=$quant_kernels; s=$quant_silo; fi
  for pair in "tests/Kernels.Tests|$k" "tests/Silo.Tests|$s"; do
    proj=${pair%%|*}; filter=${pair#*|}
    env $knobs LOOM_EXPECT_ISA="$isa" LOOM_EXPECT_INT8_DOT="$dot" dotnet test "$proj" -c Release --no-build --nologo -v q \
      --logger "console;verbosity=normal" --blame-hang-timeout 8m --blame-hang-dump-type none \
      --filter "$filter" "$@" || { echo "ISA leg $name: $proj FAILED"; status=1; }
  done
done
exit $status
