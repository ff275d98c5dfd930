using Loom.Grains.Abstractions;
using Loom.Kernels.Cpu.Isa;
using Loom.Silo.Configuration;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Loom.Silo.Models;
using Loom.Tools.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace Loom.Silo.Tests.Engine;

/// <summary>engine.cpu_isa in a worker: the choice reaches the stats the gateway reports, and a bad one names the setting.</summary>
public sealed class IsaWorkerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-isa-worker-").FullName;

    public IsaWorkerTests() => ModelGenerator.Generate(ModelPresets.Tiny with { Vocab = 256 }, _dir, new GenerateOptions { Seed = 5 });

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private LoomOptions Options(string isa) => new()
    {
        Model = new() { Path = _dir, Name = "tiny" },
        Device = "cpu",
        Engine = new() { CpuIsa = isa, KvCacheBytes = 2L * 1024 * 1024, Threads = 1, MaxNumSeqs = 4 },
    };

    private static async Task<List<int>> Greedy(WorkerEngine worker)
    {
        var tokens = new List<int>();
        await foreach (var d in worker.Engine.Submit(new GenerationRequest("r", [5, 9, 2, 7], new SamplingParams { MaxTokens = 8, IgnoreEos = true })))
            if (d.TokenId >= 0) tokens.Add(d.TokenId);
        return tokens;
    }

    /// <summary>
    /// Under scripts/isa-legs.sh the worker the silo builds (auto) runs the leg's ISA; outside a leg
    /// it runs the best one. Either way it reports it and serves; so does a worker forced onto the
    /// portable kernels.
    /// </summary>
    [Fact]
    public async Task IsaLegWorkerRunsTheExpectedIsaAndReportsIt()
    {
        using var auto = new WorkerEngine(Options("auto"), NullLogger<WorkerEngine>.Instance);
        await auto.LoadAsync();
        var want = Environment.GetEnvironmentVariable("LOOM_EXPECT_ISA") is { Length: > 0 } leg ? leg : CpuIsaSelector.Name(CpuIsaSelector.Best());
        Assert.Equal(("cpu", want), auto.Device);
        var stats = auto.GetStats();
        Assert.Equal("cpu", stats.Device);
        Assert.Equal(want, stats.Isa);
        if (Environment.GetEnvironmentVariable("LOOM_EXPECT_INT8_DOT") is { Length: > 0 } dot)
            Assert.Equal(dot, CpuIsaSelector.Int8Dot(CpuIsaSelector.Best()));

        var fallback = CpuIsaSelector.IsSupported(CpuIsa.Portable, out _) ? "portable" : "auto";
        using var portable = new WorkerEngine(Options(fallback), NullLogger<WorkerEngine>.Instance);
        await portable.LoadAsync();
        Assert.Equal(8, (await Greedy(auto)).Count);
        Assert.Equal(8, (await Greedy(portable)).Count);
        Assert.Equal(0, auto.GetStats().UsedBlocks);
    }

    [Fact]
    public async Task AnIsaTheCpuLacksNamesTheSetting()
    {
        var missing = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "avx2" : "neon";
        using var worker = new WorkerEngine(Options(missing), NullLogger<WorkerEngine>.Instance);
        var e = await Assert.ThrowsAsync<LoomConfigException>(() => worker.LoadAsync());
        Assert.Equal("engine.cpu_isa", e.Key);
        Assert.Contains(missing, e.Message);
        Assert.Equal(("engine.cpu_isa", "must be auto, avx512, avx2, neon or portable, got 'sse9'"), Options("sse9").Validate());
    }
}
