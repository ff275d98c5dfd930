using System.Text.RegularExpressions;
using Loom.Kernels.Cuda;
using Loom.Tools.Cuda;

namespace Loom.Kernels.Tests;

/// <summary>The committed PTX: every entry C# launches exists in it, and it is what NVRTC makes of the .cu sources now.</summary>
public sealed class PtxTests
{
    private static string KernelDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Cluster.sln"))) return Path.Combine(d.FullName, "src", "Kernels", "Cuda", "Kernels");
        throw new DirectoryNotFoundException("repository root (Cluster.sln) not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void EveryEntryPointNamedInCSharpIsInTheEmbeddedPtx()
    {
        foreach (var (module, entries) in CudaKernels.EntriesByModule)
        {
            var ptx = CudaKernels.Ptx(module);
            Assert.Contains(".target sm_80", ptx);
            var found = Regex.Matches(ptx, @"\.visible \.entry (\w+)\(").Select(m => m.Groups[1].Value).ToHashSet();
            foreach (var e in entries) Assert.True(found.Contains(e), $"{module}.ptx has no entry '{e}' (it has: {string.Join(", ", found)})");
            Assert.Equal(entries.Order(), found.Order()); // and nothing unlisted
        }
    }

    [SkippableFact]
    public void CommittedPtxEqualsAFreshNvrtcBuild()
    {
        Skip.IfNot(Nvrtc.IsAvailable(out string reason), reason);
        var dir = KernelDir();
        var headers = new Dictionary<string, string> { [CudaKernels.CommonHeader] = File.ReadAllText(Path.Combine(dir, CudaKernels.CommonHeader)) };
        foreach (var module in CudaKernels.EntriesByModule.Keys)
        {
            var fresh = Nvrtc.CompileToPtx(File.ReadAllText(Path.Combine(dir, module + ".cu")), module + ".cu", headers);
            Assert.True(fresh == File.ReadAllText(Path.Combine(dir, module + ".ptx")),
                $"{module}.ptx is stale: run `dotnet run --project tests/Tools -c Release -- ptx build src/Kernels/Cuda/Kernels`");
            Assert.Equal(fresh, CudaKernels.Ptx(module));
        }
    }

    [SkippableFact]
    public void NvrtcCompileErrorsCarryTheLog()
    {
        Skip.IfNot(Nvrtc.IsAvailable(out string reason), reason);
        var e = Assert.Throws<NvrtcException>(() => Nvrtc.CompileToPtx("extern \"C\" __global__ void k() { undefined_thing(); }", "bad.cu", new Dictionary<string, string>()));
        Assert.Contains("undefined_thing", e.Log);
    }
}

/// <summary>Launch geometry of the CUDA kernels, checked without a GPU.</summary>
public sealed class CudaLaunchGeometryTests
{
    [Theory]
    [InlineData(1, 32)]
    [InlineData(7, 576)]
    [InlineData(64, 4096)]
    [InlineData(3, 1)]
    public void RowKernelsUseAWarpMultipleUpTo1024(int rows, int cols)
    {
        var s = CudaLaunch.PerRow(rows, cols);
        Assert.Equal((uint)rows, s.GridX);
        Assert.Equal(0u, s.Block % 32);
        Assert.InRange(s.Block, 32u, 1024u);
        Assert.True(s.Block >= Math.Min(cols, 1024) || s.Block == 1024);
    }

    [Theory]
    [InlineData(64, 1, 1)]
    [InlineData(128, 512, 1)]
    [InlineData(128, 513, 2)]
    [InlineData(128, 8192, 16)]
    public void DecodeSplitsLongContextsIntoPartitions(int headDim, int maxLen, int partitions)
    {
        var s = CudaLaunch.Decode(heads: 32, seqs: 64, maxLen, headDim);
        Assert.Equal((32u, 64u, (uint)partitions), (s.GridX, s.GridY, s.GridZ));
        Assert.Equal((uint)((headDim + 512) * 4), s.SharedBytes);
        var (stats, outputs) = CudaLaunch.DecodeScratch(32, 64, maxLen, headDim);
        Assert.Equal(64L * 32 * partitions, stats);
        Assert.Equal(stats * headDim, outputs);
    }

    [Fact]
    public void LimitsAreClearErrors()
    {
        Assert.Throws<NotSupportedException>(() => CudaLaunch.Prefill(8, 10, 512));
        Assert.Equal((10u, 8u, 32u), (CudaLaunch.Prefill(8, 10, 256).GridX, CudaLaunch.Prefill(8, 10, 256).GridY, CudaLaunch.Prefill(8, 10, 256).Block));
        Assert.Throws<NotSupportedException>(() => CudaLaunch.Decode(8, 1, 10, 12000));
        Assert.Equal(1024u, CudaLaunch.Sample(5).Block);
        Assert.Equal(65535u, CudaLaunch.Elementwise(1L << 40).GridX);
        Assert.Equal(1u, CudaLaunch.Elementwise(1).GridX);
    }

    [Fact]
    public void PrefillOfMoreThan65535TokensFitsTheGrid()
    {
        // 100,000 tokens in one step: on y this was CUDA_ERROR_INVALID_VALUE; on x it is legal.
        var s = CudaLaunch.Prefill(heads: 32, tokens: 100_000, headDim: 128);
        Assert.Equal((100_000u, 32u), (s.GridX, s.GridY));
        CudaLaunch.Validate("paged_attention_prefill", s);
    }

    [Fact]
    public void ShapesOutsideTheHardwareLimitsAreNamedErrors()
    {
        var e = Assert.Throws<NotSupportedException>(() => CudaLaunch.Validate("k", new LaunchShape(8, 70_000, 1, 32, 0)));
        Assert.Contains("kernel k", e.Message);
        Assert.Throws<NotSupportedException>(() => CudaLaunch.Validate("k", new LaunchShape(0, 1, 1, 32, 0)));
        Assert.Throws<NotSupportedException>(() => CudaLaunch.Validate("k", new LaunchShape(1, 1, 1, 2048, 0)));
        CudaLaunch.Validate("k", CudaLaunch.Decode(32, 64, 8192, 128));
        CudaLaunch.Validate("k", CudaLaunch.Elementwise(1L << 40));
    }
}
