using Loom.Grains.Abstractions;
using Loom.GpuCheck;
using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Models;

namespace Loom.Silo.Tests.GpuCheck;

/// <summary>The small model the GPU check generates, once for these tests, in a temporary model folder.</summary>
public sealed class GpuCheckModelFixture : IDisposable
{
    public GpuCheckModelFixture()
    {
        ModelRoot = Directory.CreateTempSubdirectory("loom-gpu-check-models-").FullName;
        TinyDir = Checks.TinyModel(ModelRoot);
    }

    public string ModelRoot { get; }
    public string TinyDir { get; }

    public void Dispose() => Directory.Delete(ModelRoot, recursive: true);
}

/// <summary>
/// The GPU check end to end with a CPU backend in the device's place: the same code the device
/// runs, so every check (embedding_f32 included) and the engine run are exercised
/// here, and on the CPU they must all pass.
/// </summary>
public sealed class GpuCheckCpuRunTests(GpuCheckModelFixture f) : IClassFixture<GpuCheckModelFixture>
{
    [Fact]
    public void GpuCheckQuickRunOnTheCpuPassesEveryCheckAndWritesOnlyTheResultFile()
    {
        var outDir = Directory.CreateTempSubdirectory("loom-gpu-check-out-").FullName;
        try
        {
            using var sw = new StringWriter();
            var log = new CheckLog(sw);
            var o = new GpuCheckOptions(Quick: true, RequireGpu: true, OutDir: outDir, ModelRoot: f.ModelRoot, DeadlineSeconds: 0);
            var gpu = new CudaDeviceInfo(true, "CPU standing in for a GPU", "NVIDIA H100 80GB HBM3");
            int rc = GpuCheckRun.Run(o, log, () => gpu, () => new CpuBackend(1), () => new CpuBackend(1));
            var text = sw.ToString();
            Assert.True(rc == 0, text);
            Assert.Equal(0, log.Failed);
            foreach (var name in new[] { "rms_norm", "embedding bf16", "embedding f32", "attention decode split-K", "attention prefill 70,000 tokens in one step",
                         "device sampling", "end-to-end greedy agreement", "engine run (16 mixed requests)" })
                Assert.Contains($"PASS {name}:", text);
            Assert.Equal(17, log.Passed); // 13 ops, sampling, 2 end-to-end, the engine run
            var lines = log.Lines.ToList();
            int summary = lines.IndexOf("17 passed, 0 failed");
            Assert.True(summary > 0, text);
            Assert.Contains("not measured", lines[summary + 1]);
            // --out holds the small result file and nothing else: the model stayed in the model folder.
            var written = Directory.GetFiles(outDir, "*", SearchOption.AllDirectories);
            Assert.Equal([Path.Combine(outDir, GpuCheckRun.ResultFile)], written);
            Assert.True(new FileInfo(written[0]).Length < 64 * 1024);
            Assert.Contains("17 passed, 0 failed", File.ReadAllText(written[0]));
        }
        finally { Directory.Delete(outDir, recursive: true); }
    }

    [Fact]
    public void GpuCheckEngineRunOnTheCpuAgreesExactly()
    {
        using var a = new CpuBackend(1);
        using var b = new CpuBackend(1);
        using var ma = LlamaModel.Load(f.TinyDir, a);
        using var mb = LlamaModel.Load(f.TinyDir, b);
        var requests = EngineRun.Requests(ma.Config.VocabSize);
        Assert.Equal(16, requests.Count);
        Assert.Contains(requests, r => r.Sampling.N == 2 && r.Sampling.Temperature == 0);
        Assert.Contains(requests, r => r.Sampling.N == 2 && r.Sampling.Seed is not null);
        var want = EngineRun.Drive(ma, "device", requests);
        var got = EngineRun.Drive(mb, "auto", requests);
        var outcome = EngineRun.Compare(requests, want, got);
        Assert.True(outcome.Ok, outcome.Detail);
        // The same backend on both sides: no ties to forgive, every greedy token equal.
        Assert.Equal(outcome.GreedyTokens, outcome.AgreedTokens);
        Assert.Equal(0, outcome.NearTies);
        Assert.Equal(12, outcome.GreedySamples); // 4 greedy requests with n = 1, 4 with n = 2
        Assert.Equal(12, outcome.SeededSamples);
    }
}

/// <summary>The engine comparison's rules on hand-made streams: exact agreement, a forgiven near tie, a real mismatch, an incomplete sample.</summary>
public sealed class GpuCheckEngineCompareTests
{
    private static readonly IReadOnlyList<GenerationRequest> Requests = EngineRun.Requests(4096);

    /// <summary>Token i of every sample is 100 + i; the reference rates token 3000 + i just 0.1 below it and 2000 + i far below.</summary>
    private static Dictionary<string, List<TokenDelta>[]> Streams() => Requests.ToDictionary(r => r.RequestId, r =>
        Enumerable.Range(0, r.Sampling.N).Select(k => Enumerable.Range(0, r.Sampling.MaxTokens).Select(i =>
            new TokenDelta(k, 100 + i, -0.5f, [new(100 + i, -0.5f), new(3000 + i, -0.6f), new(2000 + i, -3f)],
                i == r.Sampling.MaxTokens - 1 ? FinishReason.Length : null)).ToList()).ToArray());

    private static void SetToken(Dictionary<string, List<TokenDelta>[]> s, string id, int sample, int i, int token) =>
        s[id][sample][i] = s[id][sample][i] with { TokenId = token };

    [Fact]
    public void GpuCheckEngineCompareAcceptsEqualStreams()
    {
        var o = EngineRun.Compare(Requests, Streams(), Streams());
        Assert.True(o.Ok, o.Detail);
        Assert.Equal(o.GreedyTokens, o.AgreedTokens);
        Assert.Equal(12, o.GreedySamples); // r00, r04, r08, r12 (n = 1) and r02, r06, r10, r14 (n = 2)
        Assert.Equal(12, o.SeededSamples);
    }

    [Fact]
    public void GpuCheckEngineCompareForgivesANearTieAndStopsThere()
    {
        var got = Streams();
        SetToken(got, "r02", 1, 2, 3002); // 0.1 below the reference's choice
        SetToken(got, "r02", 1, 3, 7);    // after the divergence the continuations are unrelated
        var o = EngineRun.Compare(Requests, Streams(), got);
        Assert.True(o.Ok, o.Detail);
        Assert.Equal(1, o.NearTies);
        Assert.Equal(o.GreedyTokens - (Requests.Single(r => r.RequestId == "r02").Sampling.MaxTokens - 2), o.AgreedTokens);
    }

    [Fact]
    public void GpuCheckEngineCompareRejectsAClearMismatch()
    {
        var far = Streams();
        SetToken(far, "r04", 0, 1, 2001); // rated 2.5 below: not a tie
        var o = EngineRun.Compare(Requests, Streams(), far);
        Assert.False(o.Ok);
        Assert.Contains("r04#0 token 1", o.Detail);

        var unlisted = Streams();
        SetToken(unlisted, "r00", 0, 0, 4000);
        Assert.Contains("not in the reference's top 5", EngineRun.Compare(Requests, Streams(), unlisted).Detail);
    }

    [Fact]
    public void GpuCheckEngineCompareRejectsIncompleteSamples()
    {
        var got = Streams();
        got["r03"][1].RemoveAt(got["r03"][1].Count - 1);
        var o = EngineRun.Compare(Requests, Streams(), got);
        Assert.False(o.Ok);
        Assert.Contains("r03#1", o.Detail);
    }
}
