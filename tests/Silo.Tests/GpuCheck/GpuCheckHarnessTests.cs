using Loom.GpuCheck;
using Loom.Kernels;
using Loom.Kernels.Cuda;
using Loom.Kernels.Cuda.Interop;

namespace Loom.Silo.Tests.GpuCheck;

/// <summary>
/// The GPU check's harness on the CPU: the bandwidth table, the figure lines, where models and
/// results go, and that a backend that cannot be created is a named failure before the summary.
/// </summary>
public sealed class GpuCheckHarnessTests
{
    [Theory]
    [InlineData("NVIDIA H100 80GB HBM3", "H100 SXM", 3.35e12)]
    [InlineData("NVIDIA H100 SXM5 80GB", "H100 SXM", 3.35e12)]
    [InlineData("NVIDIA H100 PCIe", "H100 PCIe", 2.0e12)]
    [InlineData("NVIDIA H200", "H200", 4.8e12)]
    [InlineData("NVIDIA H200 NVL", "H200", 4.8e12)]
    public void GpuCheckBandwidthComesFromTheDeviceName(string device, string card, double bytesPerSecond)
    {
        var hbm = HbmTable.ForDevice(device);
        Assert.Equal(card, hbm.Card);
        Assert.Equal(bytesPerSecond, hbm.BytesPerSecond);
    }

    [Theory]
    [InlineData("NVIDIA H100 NVL")]
    [InlineData("NVIDIA GH200 480GB")]
    [InlineData("NVIDIA A100-SXM4-80GB")]
    [InlineData("NVIDIA H100")]
    [InlineData("")]
    public void GpuCheckBandwidthOfOtherCardsIsUnknown(string device)
    {
        var hbm = HbmTable.ForDevice(device);
        Assert.False(hbm.Known);
        Assert.Equal("unknown", hbm.Card);
    }

    [Fact]
    public void GpuCheckFiguresNameTheAssumedCardOrPrintTheRawRate()
    {
        var t = new ThroughputFigures(100, 2400, 15_000_000_000);
        var h100 = string.Join("\n", HbmTable.FigureLines("NVIDIA H100 80GB HBM3", t));
        Assert.Contains("batch-1 100.0 tok/s, batch-64 2400.0 tok/s", h100);
        Assert.Contains((1.5e12 / 3.35e12).ToString("P1"), h100); // 15 GB x 100 tok/s over 3.35 TB/s
        Assert.Contains("card assumed: H100 SXM", h100);
        Assert.Contains("3.35 TB/s", h100);

        var other = string.Join("\n", HbmTable.FigureLines("NVIDIA A100-SXM4-80GB", t));
        Assert.Contains("HBM fraction: unknown", other);
        Assert.Contains("raw batch-1 100.0 tok/s", other);
        Assert.DoesNotContain("card assumed", other);

        Assert.Contains("not measured", string.Join("\n", HbmTable.FigureLines("NVIDIA H200", null)));
    }

    [Fact]
    public void GpuCheckModelsGoOutsideOut()
    {
        // As scripts/gpu-check.sh run calls it on the device: results to $OUT, models to the default.
        var o = GpuCheckOptions.Parse(["--out", "/work/out", "--require-gpu"], "/tmp/");
        Assert.Equal("/work/out", o.OutDir);
        Assert.Equal("/tmp/loom-gpu-check", o.ModelRoot);
        Assert.False(GpuCheckOptions.IsInside(o.ModelRoot, o.OutDir!));
        Assert.True(o.RequireGpu);

        // TMPDIR pointing into $OUT must not drag 16 GB of weights along.
        Assert.Equal("/tmp/loom-gpu-check", GpuCheckOptions.ModelRootFor("/work/out", null, "/work/out/tmp"));
        Assert.Equal("/var/tmp/loom-gpu-check", GpuCheckOptions.ModelRootFor("/tmp", null, "/tmp/x"));
        var e = Assert.Throws<ArgumentException>(() => GpuCheckOptions.Parse(["--out", "/work/out", "--models", "/work/out/models"], "/tmp"));
        Assert.Contains("inside --out", e.Message);
        Assert.Throws<ArgumentException>(() => GpuCheckOptions.ModelRootFor("/", null, "/tmp"));
    }

    [Theory]
    [InlineData("/a/b", "/a/b", true)]
    [InlineData("/a/b/c", "/a/b/", true)]
    [InlineData("/a/b/../b/c", "/a/b", true)]
    [InlineData("/a/bc", "/a/b", false)]
    [InlineData("/a", "/a/b", false)]
    [InlineData("/anything", "/", true)]
    public void GpuCheckInsideIsByPathSegments(string path, string dir, bool inside) => Assert.Equal(inside, GpuCheckOptions.IsInside(path, dir));

    [Fact]
    public void GpuCheckScriptKeepsModelsOutOfOut()
    {
        var script = File.ReadAllText(Path.Combine(RepoRoot(), "scripts", "gpu-check.sh"));
        var run = script.Split('\n').Single(l => l.TrimStart().StartsWith("\"$bin\" ", StringComparison.Ordinal));
        Assert.Contains("--out \"$out\"", run);
        Assert.Contains("--models \"$models\"", run);
        Assert.Contains("models=/tmp/", script);
        Assert.Contains("--require-gpu", run);
        Assert.Contains("chmod +x", script);
        Assert.Contains("ldd --version", script);
    }

    public static TheoryData<string> BackendFailures => new() { "dll", "cuda", "cublas" };

    [Theory]
    [MemberData(nameof(BackendFailures))]
    public void GpuCheckBackendFailureIsANamedCheckBeforeTheSummary(string kind)
    {
        Exception failure = kind switch
        {
            "dll" => new DllNotFoundException("Unable to load shared library 'libcublas.so.13'"),
            "cuda" => new CudaException("cuInit", 999),
            _ => new InvalidOperationException("cublasCreate_v2 failed"),
        };
        var (rc, lines) = RunWith(() => throw failure);
        Assert.Equal(1, rc);
        int fail = lines.FindIndex(l => l.StartsWith("FAIL device backend: " + failure.GetType().Name, StringComparison.Ordinal));
        int summary = lines.IndexOf("0 passed, 1 failed");
        Assert.True(fail >= 0, string.Join("\n", lines));
        Assert.True(summary > fail, string.Join("\n", lines));
        // Then the figures, which say they were not measured.
        Assert.Contains(lines.Skip(summary + 1), l => l.Contains("not measured", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void GpuCheckRealCudaBackendWithoutADriverFailsNamed()
    {
        // Not simulated: the real constructor on a machine without libcuda (the case where
        // `new CudaBackend()` at the top of Program.cs used to kill the process).
        Skip.If(CudaDetection.Detect().Available, "a GPU is present; the device run covers this");
        var (rc, lines) = RunWith(() => new CudaBackend());
        Assert.Equal(1, rc);
        Assert.Contains(lines, l => l.StartsWith("FAIL device backend: ", StringComparison.Ordinal));
        Assert.Contains("0 passed, 1 failed", lines);
    }

    [Fact]
    public void GpuCheckFailureWhileDisposingTheBackendStillPrecedesTheSummary()
    {
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var sw = new StringWriter();
        var log = new CheckLog(sw);
        var gpu = new CudaDeviceInfo(true, "simulated", "NVIDIA H200");
        var o = new GpuCheckOptions(true, true, null, "/tmp/unused", 0);
        int rc = GpuCheckRun.Run(o, log, () => gpu,
            () => new Models.RecordingBackend(new Kernels.Cpu.CpuBackend(1), "device", events, () => throw new CudaException("cuCtxSetCurrent", 700)),
            () => throw new OutOfMemoryException("no memory for the CPU reference"));
        var lines = Lines(sw);
        Assert.Equal(1, rc);
        Assert.Equal(["device"], events);
        int cpu = lines.FindIndex(l => l.StartsWith("FAIL cpu backend: OutOfMemoryException", StringComparison.Ordinal));
        int dispose = lines.FindIndex(l => l.StartsWith("FAIL harness: CudaException: cuCtxSetCurrent failed", StringComparison.Ordinal));
        int summary = lines.IndexOf("0 passed, 2 failed");
        Assert.True(cpu >= 0 && dispose > cpu && summary > dispose, string.Join("\n", lines));
        Assert.Contains("HBM fraction: not measured", lines[^1]);
    }

    [Fact]
    public void GpuCheckWithoutAGpuIsFineUnlessRequired()
    {
        var none = new CudaDeviceInfo(false, "libcuda.so.1 was not found");
        foreach (bool require in new[] { false, true })
        {
            using var sw = new StringWriter();
            var log = new CheckLog(sw);
            var o = new GpuCheckOptions(true, require, null, "/tmp/unused", 0);
            int rc = GpuCheckRun.Run(o, log, () => none, () => throw new InvalidOperationException("not called"), () => throw new InvalidOperationException("not called"));
            var lines = Lines(sw);
            Assert.Equal(require ? 1 : 0, rc);
            Assert.Equal(require ? "0 passed, 1 failed" : "0 passed, 0 failed", lines[^1]);
        }
    }

    [Fact]
    public void GpuCheckExceptionsBecomeNamedFailuresWithTheirType()
    {
        using var sw = new StringWriter();
        var log = new CheckLog(sw);
        Assert.False(log.Run("boom", () => throw new TimeoutException("too slow")));
        Assert.True(log.Run("fine", () => log.Pass("fine", "ok")));
        Assert.Null(log.Run<string>("null", () => throw new InvalidOperationException("x")));
        Assert.Equal("1 passed, 2 failed", log.Summary);
        Assert.StartsWith("FAIL boom: TimeoutException: too slow", Lines(sw)[0]);
    }

    private static (int Rc, List<string> Lines) RunWith(Func<IBackend> createDevice)
    {
        using var sw = new StringWriter();
        var log = new CheckLog(sw);
        var gpu = new CudaDeviceInfo(true, "NVIDIA H100 80GB HBM3 (simulated)", "NVIDIA H100 80GB HBM3", 9, 0, 80L << 30, 13000);
        var o = new GpuCheckOptions(false, true, null, "/tmp/unused", 0);
        int rc = GpuCheckRun.Run(o, log, () => gpu, createDevice, () => throw new InvalidOperationException("the CPU backend is not reached"));
        return (rc, Lines(sw));
    }

    private static List<string> Lines(StringWriter sw) => [.. sw.ToString().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0)];

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Cluster.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("repository root (Cluster.sln) not found above " + AppContext.BaseDirectory);
    }
}
