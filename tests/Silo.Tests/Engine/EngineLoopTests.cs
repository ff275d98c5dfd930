using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public sealed class EngineLoopTests(EngineFixture f) : IClassFixture<EngineFixture>
{
    private static GenerationRequest Req(string id, int[] prompt, int maxTokens, float temperature = 0, ulong? seed = null, int n = 1, int? logprobs = null) =>
        new(id, prompt, new SamplingParams { MaxTokens = maxTokens, Temperature = temperature, Seed = seed, N = n, IgnoreEos = true, Logprobs = logprobs });

    /// <summary>32 requests of mixed prompt and output lengths, greedy and seeded-sampled alternately.</summary>
    private static List<GenerationRequest> MixedLoad() => Enumerable.Range(0, 32).Select(i =>
        Req($"r{i}", EngineDriver.Prompt(i, 3 + i * 37 % 90), 4 + i * 7 % 19, temperature: i % 2 == 0 ? 0 : 0.9f, seed: (ulong)(1000 + i))).ToList();

    private Dictionary<string, List<int>> RunAlone(IEnumerable<GenerationRequest> requests)
    {
        var result = new Dictionary<string, List<int>>();
        foreach (var r in requests)
        {
            using var engine = f.NewEngine();
            result[r.RequestId] = EngineDriver.RunAll(engine, [r])[r.RequestId].Tokens[0];
        }
        return result;
    }

    [Fact]
    public void EveryRequestInAMixedContinuousBatchMatchesItsSoloRun()
    {
        var load = MixedLoad();
        var alone = RunAlone(load);
        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 256, MaxNumBatchedTokens = 96, MaxNumSeqs = 32 });
        var together = EngineDriver.RunAll(engine, load);
        foreach (var r in load)
        {
            Assert.Equal(r.Sampling.MaxTokens, together[r.RequestId].Tokens[0].Count);
            Assert.Equal(alone[r.RequestId], together[r.RequestId].Tokens[0]);
        }
        Assert.True(engine.PeakRunning > 8, $"peak running {engine.PeakRunning}: the batch never filled");
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }

    [Fact]
    public void PreemptedRequestsAllFinishWithTheUnconstrainedOutputs()
    {
        var load = MixedLoad();
        using var roomy = f.NewEngine(new EngineOptions { NumBlocks = 256, MaxNumSeqs = 32 });
        var expected = EngineDriver.RunAll(roomy, load);
        using var tight = f.NewEngine(new EngineOptions { NumBlocks = 14, MaxNumSeqs = 32, MaxNumBatchedTokens = 128 });
        var got = EngineDriver.RunAll(tight, load);
        Assert.True(tight.Preemptions > 0, "the small pool never forced a preemption");
        foreach (var r in load) Assert.Equal(expected[r.RequestId].Tokens[0], got[r.RequestId].Tokens[0]);
        var stats = tight.GetStats();
        Assert.Equal(0, stats.UsedBlocks);
        Assert.Equal(stats.TotalBlocks, stats.FreeBlocks);
    }

    [Fact]
    public void SharedPrefixReusesCachedBlocksAndGivesIdenticalOutput()
    {
        int[] prefix = EngineDriver.Prompt(77, 48); // exactly 3 blocks of 16
        int[] a = [.. prefix, 1, 2, 3, 4, 5];
        int[] b = [.. prefix, 9, 8, 7];
        using var cold = f.NewEngine(new EngineOptions { NumBlocks = 64, EnablePrefixCaching = false });
        var expected = EngineDriver.RunAll(cold, [Req("b", b, 12)])["b"].Tokens[0];

        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 64 });
        EngineDriver.RunAll(engine, [Req("a", a, 6)]);
        long hitsBefore = engine.GetStats().PrefixCacheHits;
        var got = EngineDriver.RunAll(engine, [Req("b", b, 12)])["b"].Tokens[0];
        Assert.Equal(48, engine.GetStats().PrefixCacheHits - hitsBefore);
        Assert.Equal(expected, got);
    }

    [Fact]
    public void ChunkedPrefillGivesTheSameLogitsAsOnePass()
    {
        int[] prompt = EngineDriver.Prompt(5, 200);
        using var onePass = f.NewEngine(new EngineOptions { NumBlocks = 64, MaxNumBatchedTokens = 512 });
        using var chunked = f.NewEngine(new EngineOptions { NumBlocks = 64, MaxNumBatchedTokens = 48 });
        var x = EngineDriver.RunAll(onePass, [Req("x", prompt, 8, logprobs: 20)])["x"];
        var y = EngineDriver.RunAll(chunked, [Req("x", prompt, 8, logprobs: 20)])["x"];
        Assert.Equal(x.Tokens[0], y.Tokens[0]);
        for (int i = 0; i < x.Deltas.Count; i++)
        {
            var (ex, ey) = (x.Deltas[i].TopLogprobs!, y.Deltas[i].TopLogprobs!);
            Assert.Equal(20, ex.Count);
            for (int k = 0; k < ex.Count; k++)
            {
                Assert.Equal(ex[k].TokenId, ey[k].TokenId);
                Assert.Equal(ex[k].Logprob, ey[k].Logprob, 1e-4f);
            }
        }
    }

    [Fact]
    public async Task AbortMidGenerationReturnsBlocksToBaseline()
    {
        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 64, EnablePrefixCaching = false });
        var baseline = engine.GetStats();
        var stream = engine.Submit(Req("long", EngineDriver.Prompt(1, 40), 200));
        var other = engine.Submit(Req("short", EngineDriver.Prompt(2, 10), 5));
        for (int i = 0; i < 10; i++) engine.Step();
        Assert.True(engine.GetStats().UsedBlocks > 0);
        await engine.AbortAsync("long");
        while (engine.Step()) { }
        var outLong = EngineDriver.Collect(stream, 1);
        Assert.Equal(FinishReason.Abort, outLong.Deltas[^1].Finish);
        Assert.True(outLong.Tokens[0].Count < 200);
        Assert.Equal(5, EngineDriver.Collect(other, 1).Tokens[0].Count);
        var after = engine.GetStats();
        Assert.Equal(baseline.UsedBlocks, after.UsedBlocks);
        Assert.Equal(baseline.FreeBlocks, after.FreeBlocks);
    }

    [Fact]
    public void ParallelSamplesShareThePromptAndDiffer()
    {
        int[] prompt = EngineDriver.Prompt(9, 37);
        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 64 });
        var o = EngineDriver.RunAll(engine, [Req("n", prompt, 10, temperature: 1.0f, seed: 7, n: 3)])["n"];
        Assert.All(o.Tokens, t => Assert.Equal(10, t.Count));
        Assert.True(o.Tokens[0].SequenceEqual(o.Tokens[1]) is false || o.Tokens[1].SequenceEqual(o.Tokens[2]) is false);
        // The prompt's full blocks were computed once: the later samples found them in the prefix
        // cache and computed only the partial last block (37 = 2 blocks of 16 + 5).
        Assert.Equal(prompt.Length + 2 * (prompt.Length % 16), engine.GetStats().PromptTokens);
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }

    [Fact]
    public void SeededParallelSamplesRepeatInTheSameEngine()
    {
        int[] prompt = EngineDriver.Prompt(9, 37);
        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 64 });
        var first = EngineDriver.RunAll(engine, [Req("a", prompt, 10, temperature: 1.0f, seed: 7, n: 3)])["a"];
        var second = EngineDriver.RunAll(engine, [Req("b", prompt, 10, temperature: 1.0f, seed: 7, n: 3)])["b"];
        using var fresh = f.NewEngine(new EngineOptions { NumBlocks = 64 });
        var third = EngineDriver.RunAll(fresh, [Req("c", prompt, 10, temperature: 1.0f, seed: 7, n: 3)])["c"];
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(third.Tokens[i], first.Tokens[i]);
            Assert.Equal(third.Tokens[i], second.Tokens[i]);
        }
    }

    [Theory]
    [InlineData("max_tokens")]
    [InlineData("temperature")]
    [InlineData("top_p")]
    [InlineData("prompt")]
    [InlineData("too_long")]
    public void BadRequestsAreRefusedAtSubmitAndTheEngineIsUnaffected(string what)
    {
        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 64, MaxModelLen = 256 });
        var ok = new SamplingParams { MaxTokens = 4, Temperature = 0 };
        var (request, param) = what switch
        {
            "max_tokens" => (new GenerationRequest("x", [1, 2], ok with { MaxTokens = 0 }), "max_tokens"),
            "temperature" => (new GenerationRequest("x", [1, 2], ok with { Temperature = -0.5f }), "temperature"),
            "top_p" => (new GenerationRequest("x", [1, 2], ok with { TopP = 1.5f }), "top_p"),
            "prompt" => (new GenerationRequest("x", [], ok), "prompt"),
            _ => (new GenerationRequest("x", EngineDriver.Prompt(3, 300), ok), "prompt"),
        };
        var e = Assert.Throws<EngineRequestException>(() => engine.Submit(request));
        Assert.Equal(param, e.Param);
        if (what == "too_long") Assert.Contains("256", e.Message);
        var fine = EngineDriver.RunAll(engine, [new GenerationRequest("y", [1, 2, 3], ok)])["y"];
        Assert.Equal(4, fine.Tokens[0].Count);
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }

    [Fact]
    public async Task TheEngineThreadServesConcurrentSubmittersAndSleepsWhenIdle()
    {
        using var engine = new EngineLoop(f.Model, new EngineOptions { NumBlocks = 128 });
        var tasks = Enumerable.Range(0, 8).Select(async i =>
        {
            var tokens = new List<int>();
            await foreach (var d in engine.Submit(Req($"t{i}", EngineDriver.Prompt(i, 20), 6))) tokens.Add(d.TokenId);
            return tokens;
        }).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(6, r.Count));
        await Task.Delay(50);
        var s = engine.GetStats();
        Assert.Equal(0, s.Running + s.Waiting);
        Assert.Equal(0, s.UsedBlocks);
    }

    [Fact]
    public async Task CancellingTheConsumerAbortsTheRequest()
    {
        // Stepped by hand, so the consumer cancels at a known point whatever the machine's load.
        using var engine = f.NewEngine(new EngineOptions { NumBlocks = 128, EnablePrefixCaching = false });
        using var cts = new CancellationTokenSource();
        var stream = engine.Submit(Req("c", EngineDriver.Prompt(4, 30), 480), cts.Token).GetAsyncEnumerator();
        engine.Step(); // prefill: the first token
        Assert.True(await stream.MoveNextAsync());
        Assert.True(engine.GetStats().UsedBlocks > 0);
        cts.Cancel(); // the abort is queued for the engine thread's next step
        engine.Step();
        var rest = new List<TokenDelta>();
        while (await stream.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10))) rest.Add(stream.Current);
        Assert.Equal(FinishReason.Abort, rest[^1].Finish);
        Assert.True(rest.Count <= 2, $"{rest.Count} deltas after the cancel");
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }
}
