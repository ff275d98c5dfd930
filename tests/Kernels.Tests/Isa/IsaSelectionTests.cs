using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Tests.Isa;

public class IsaSelectionTests
{
    [Fact]
    public void TheBackendRunsTheBestSupportedIsaAndSaysWhy()
    {
        var (best, reason) = CpuIsaSelector.Describe();
        Assert.True(CpuIsaSelector.IsSupported(best, out _));
        // Nothing better than the choice is runnable with hardware acceleration.
        if (best != CpuIsa.Avx512) Assert.False(System.Runtime.Intrinsics.X86.Avx512F.IsSupported && Vector512.IsHardwareAccelerated);
        if (best is CpuIsa.Portable or CpuIsa.Scalar) Assert.False(CpuIsaSelector.IsSupported(CpuIsa.Avx2, out _) || CpuIsaSelector.IsSupported(CpuIsa.Neon, out _));
        using var backend = new CpuBackend(1);
        Assert.Equal(best, backend.Isa);
        Assert.Equal(reason, backend.IsaReason);
        Assert.Equal($"cpu: {CpuIsaSelector.Label(best)} ({reason})", backend.Name);
    }

    /// <summary>
    /// scripts/test.sh runs the kernel, oracle and engine suites again under DOTNET_Enable* knobs and
    /// says which ISA each leg must reach. The runtime ignores knob names it does not know, so the
    /// leg proves here, in the test process, that the knob took effect.
    /// </summary>
    [SkippableFact]
    public void IsaLegRunsTheImplementationItExpects()
    {
        var expected = Environment.GetEnvironmentVariable("LOOM_EXPECT_ISA");
        Skip.If(string.IsNullOrEmpty(expected), "not an ISA leg (scripts/test.sh sets LOOM_EXPECT_ISA for each leg it runs)");
        using var backend = new CpuBackend(1);
        Console.WriteLine($"ISA leg: expected {expected}, running {backend.Name}");
        Assert.Equal(expected, CpuIsaSelector.Name(backend.Isa));
        // A leg may also pin the int8 dot product (AVX2 without AVX-VNNI runs vpmaddubsw + vpmaddwd).
        if (Environment.GetEnvironmentVariable("LOOM_EXPECT_INT8_DOT") is { Length: > 0 } dot)
        {
            Console.WriteLine($"ISA leg: int8 dot expected {dot}, running {CpuIsaSelector.Int8Dot(backend.Isa)}");
            Assert.Equal(dot, CpuIsaSelector.Int8Dot(backend.Isa));
        }
    }

    [Fact]
    public void ForcingAnIsaTheCpuLacksFailsNamingTheSetting()
    {
        var missing = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 ? "avx2" : "neon";
        var e = Assert.Throws<CpuIsaUnavailableException>(() => BackendFactory.Create("cpu", 1, cpuIsa: missing));
        Assert.Contains("engine.cpu_isa", e.Message);
        Assert.Contains(missing, e.Message);
        var bad = Assert.Throws<CpuIsaUnavailableException>(() => BackendFactory.Create("cpu", 1, cpuIsa: "sse9"));
        Assert.Contains("engine.cpu_isa", bad.Message);
        Assert.Throws<CpuIsaUnavailableException>(() => new CpuBackend(1, missing == "neon" ? CpuIsa.Neon : CpuIsa.Avx2));
    }

    [Theory]
    [InlineData("portable")]
    [InlineData("auto")]
    [InlineData("AVX2")]
    public void ForcingASupportedIsaRunsIt(string setting)
    {
        if (setting == "AVX2" && !CpuIsaSelector.IsSupported(CpuIsa.Avx2, out _)) setting = "portable";
        var (backend, why) = BackendFactory.Create("cpu", 1, cpuIsa: setting);
        using (backend)
        {
            var cpu = Assert.IsType<CpuBackend>(backend);
            var want = setting == "auto" ? CpuIsaSelector.Best() : CpuIsaSelector.Resolve(setting).Isa;
            Assert.Equal(want, cpu.Isa);
            Assert.Contains(cpu.Name, why);
            if (setting != "auto") Assert.Contains("forced by engine.cpu_isa", cpu.Name);
        }
    }

    [Fact]
    public void ExpIsAccurateAtEveryVectorWidth()
    {
        var rng = new Random(5);
        double worst = 0;
        var xs = new float[16];
        for (int trial = 0; trial < 4000; trial++)
        {
            for (int i = 0; i < 16; i++) xs[i] = trial % 2 == 0 ? (float)(rng.NextDouble() * 170 - 86) : (float)(rng.NextDouble() * 20 - 10);
            var e512 = VectorMath.Exp(Vector512.Create(xs));
            var e256 = VectorMath.Exp(Vector256.Create(xs.AsSpan(0, 8)));
            var e128 = VectorMath.Exp(Vector128.Create(xs.AsSpan(8, 4)));
            for (int i = 0; i < 16; i++)
            {
                double want = Math.Exp(xs[i]);
                worst = Math.Max(worst, Math.Abs(e512[i] - want) / want);
                if (i < 8) worst = Math.Max(worst, Math.Abs(e256[i] - want) / want);
                if (i >= 8 && i < 12) worst = Math.Max(worst, Math.Abs(e128[i - 8] - want) / want);
            }
        }

        Assert.True(worst < 3e-7, $"worst relative error {worst:E2}");
    }
}
