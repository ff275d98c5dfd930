using Loom.Silo.Simulation;
using Loom.Grains.Abstractions;
using Loom.Kernels;
using Loom.Kernels.Sampling;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

/// <summary>
/// One sampling algorithm (SamplingBatch's): the engine's host and device paths, the sparse
/// sampler of the simulated runner and the dense TokenSampler give the same tokens, so a seeded
/// request keeps its tokens when it fails over between workers that sample differently. (On a GPU
/// the CUDA kernels are held to TokenSampler by tests/GpuCheck.)
/// </summary>
public sealed class SamplingEqualityTests(EngineFixture f) : IClassFixture<EngineFixture>
{
    private EngineLoop Engine(string sampling, int maxNumSeqs = 32) =>
        f.NewEngine(new EngineOptions { NumBlocks = 256, MaxNumBatchedTokens = 96, MaxNumSeqs = maxNumSeqs, Sampling = sampling });

    private static GenerationRequest Req(string id, int seed, int promptLength, SamplingParams p) => new(id, EngineDriver.Prompt(seed, promptLength), p);

    [Fact]
    public void SamplingGreedyIsIdenticalOnTheHostAndDevicePaths()
    {
        List<GenerationRequest> load =
        [
            Req("plain", 1, 20, new() { MaxTokens = 12, Temperature = 0, IgnoreEos = true, Logprobs = 5 }),
            Req("repetition", 2, 35, new() { MaxTokens = 16, Temperature = 0, IgnoreEos = true, RepetitionPenalty = 1.8f, Logprobs = 3 }),
            Req("frequency", 3, 9, new() { MaxTokens = 20, Temperature = 0, IgnoreEos = true, FrequencyPenalty = 1.5f, PresencePenalty = 0.7f }),
            Req("min_tokens", 4, 14, new() { MaxTokens = 10, MinTokens = 8, Temperature = 0, StopTokenIds = [.. Enumerable.Range(0, 512).Where(i => i % 3 == 0)] }),
            Req("n2", 5, 27, new() { MaxTokens = 9, Temperature = 0, IgnoreEos = true, N = 2, Logprobs = 2 }),
        ];
        using var host = Engine("host");
        using var device = Engine("device");
        var want = EngineDriver.RunAll(host, load);
        var got = EngineDriver.RunAll(device, load);
        foreach (var r in load)
            for (int i = 0; i < r.Sampling.N; i++) Assert.Equal(want[r.RequestId].Tokens[i], got[r.RequestId].Tokens[i]);
        Assert.All(got["min_tokens"].Tokens[0].Take(8), t => Assert.NotEqual(0, t % 3));
        Assert.Equal(0, device.GetStats().UsedBlocks);
    }

    /// <summary>Seeded draws with truncation: alone equals in a 32-request batch, and n &gt; 1 children repeat.</summary>
    [Fact]
    public void SamplingSeededIsBatchInvariantAndReproducible()
    {
        var load = Enumerable.Range(0, 32).Select(i => Req($"s{i}", 40 + i, 3 + i * 37 % 90, new SamplingParams
        {
            MaxTokens = 4 + i * 7 % 19, Temperature = 0.6f + i % 4 * 0.3f, Seed = (ulong)(500 + i), IgnoreEos = true,
            TopK = i % 3 == 0 ? 20 : 0, TopP = i % 4 == 1 ? 0.8f : 1f, MinP = i % 5 == 2 ? 0.05f : 0f,
            N = i % 8 == 7 ? 2 : 1, PresencePenalty = i % 6 == 3 ? 0.5f : 0f,
        })).ToList();
        var alone = new Dictionary<string, List<int>[]>();
        foreach (var r in load)
        {
            using var solo = Engine("device");
            alone[r.RequestId] = EngineDriver.RunAll(solo, [r])[r.RequestId].Tokens;
        }
        using var batch = Engine("device");
        var together = EngineDriver.RunAll(batch, load);
        Assert.True(batch.PeakRunning > 8, $"peak running {batch.PeakRunning}: the batch never filled");
        foreach (var r in load)
            for (int i = 0; i < r.Sampling.N; i++) Assert.Equal(alone[r.RequestId][i], together[r.RequestId].Tokens[i]);
        Assert.Contains(together.Values, o => o.Tokens[0].Distinct().Count() > 2); // it really sampled
    }

    /// <summary>
    /// A seeded request with top-k and top-p fails over: its first k tokens come from a worker that
    /// samples on the host, the rest from one that samples on the device, and the stream is the
    /// uninterrupted one.
    /// </summary>
    [Fact]
    public void SamplingAFailedOverSeededRequestKeepsItsTokensAcrossHostAndDeviceWorkers()
    {
        var p = new SamplingParams { MaxTokens = 24, Temperature = 0.9f, TopK = 40, TopP = 0.9f, Seed = 77, IgnoreEos = true };
        var r = Req("fo", 9, 30, p);
        using var device = Engine("device");
        var whole = EngineDriver.RunAll(device, [r])["fo"].Tokens[0];
        using var host = Engine("host");
        var onHost = EngineDriver.RunAll(host, [r])["fo"].Tokens[0];
        Assert.Equal(whole, onHost);
        foreach (int k in new[] { 1, 7, 23 })
        {
            var resumed = r with { RequestId = $"fo~{k}", ResumeTokenIds = onHost.Take(k).ToArray() };
            var rest = EngineDriver.RunAll(device, [resumed])[resumed.RequestId].Tokens[0];
            Assert.Equal(whole.Skip(k), rest);
        }
        Assert.True(whole.Distinct().Count() > 3, "the request did not really sample");
    }

    /// <summary>The simulated runner's sparse sampler draws what the dense algorithm draws from the materialised row.</summary>
    [Fact]
    public void SamplingSparseRowsDrawWhatTheDenseAlgorithmDraws()
    {
        var rng = new Random(3);
        var dense = new TokenSampler();
        var sparse = new SparseRowSampler();
        int same = 0, cases = 600;
        for (int c = 0; c < cases; c++)
        {
            int vocab = rng.Next(2, 400);
            float d = (float)(rng.NextDouble() * 4 - 2);
            var exceptions = Enumerable.Range(0, rng.Next(0, 6)).Select(_ => (rng.Next(vocab), (float)(rng.NextDouble() * 20 - 5)))
                .DistinctBy(e => e.Item1).ToList();
            float t = c % 5 == 0 ? 0f : (float)(0.3 + rng.NextDouble() * 2);
            int topK = c % 3 == 0 ? rng.Next(1, vocab + 2) : 0;
            float topP = c % 4 == 1 ? (float)(0.2 + rng.NextDouble() * 0.8) : 1f;
            float minP = c % 7 == 2 ? (float)(rng.NextDouble() * 0.3) : 0f;
            var batch = new SamplingBatch();
            batch.AddSlot(0, t, topK, topP, minP, rng.NextDouble(), c % 2 == 0 ? 3 : null);
            foreach (var tok in Enumerable.Range(0, rng.Next(0, 4)).Select(_ => rng.Next(vocab)).Distinct())
                batch.AddAdjustment(0, tok, 1f + (float)rng.NextDouble(), rng.Next(3) == 0 ? float.PositiveInfinity : (float)rng.NextDouble());
            var row = Enumerable.Repeat(d, vocab).ToArray();
            foreach (var (id, l) in exceptions) row[id] = l;
            var want = Clone(batch);
            dense.Sample(row, vocab, want);
            batch.PrepareOutputs();
            sparse.Sample(batch, 0, vocab, d, exceptions);
            if (want.Ids[0] == batch.Ids[0]) same++;
            if (want.WantLogprob[0] && want.Ids[0] == batch.Ids[0])
            {
                Assert.Equal(want.Logprobs[0], batch.Logprobs[0], 1e-4f);
                Assert.Equal(want.TopIds.AsSpan(0, 3).ToArray(), batch.TopIds.AsSpan(0, 3).ToArray());
            }
        }
        // Greedy and truncated draws agree exactly; a draw a rounding error from a token boundary may not.
        Assert.True(same >= cases - 3, $"{cases - same} of {cases} draws differ");
    }

    /// <summary>
    /// Structured outputs' hook: a slot's allowed-token mask. Dense, sparse and engine draws stay
    /// inside it, greedy or sampled, and a constraint advances with every accepted token.
    /// </summary>
    [Fact]
    public void SamplingMasksKeepEveryDrawInsideTheAllowedSet()
    {
        var rng = new Random(8);
        var dense = new TokenSampler();
        var sparse = new SparseRowSampler();
        for (int c = 0; c < 300; c++)
        {
            int vocab = rng.Next(40, 300);
            var allowed = Enumerable.Range(0, vocab).Where(_ => rng.Next(4) == 0).Append(rng.Next(vocab)).Distinct().ToHashSet();
            float t = c % 3 == 0 ? 0f : 1f;
            var batch = new SamplingBatch();
            batch.AddSlot(0, t, c % 5 == 0 ? 3 : 0, c % 7 == 0 ? 0.8f : 1f, 0f, rng.NextDouble(), null);
            var words = batch.AddMask(0, vocab);
            foreach (var id in allowed) words[id >> 5] |= 1u << (id & 31);
            var row = Enumerable.Range(0, vocab).Select(_ => (float)(rng.NextDouble() * 6)).ToArray();
            int hot = rng.Next(vocab);
            row[hot] = 30f; // the model's favourite, usually outside the mask
            dense.Sample(row, vocab, batch);
            Assert.Contains(batch.Ids[0], allowed);
            Assert.Equal(30f, row[hot]); // the row is left as it was
            if (!allowed.Contains(hot) && t == 0f) Assert.Equal(allowed.MaxBy(id => row[id]), batch.Ids[0]);
            sparse.Sample(batch, 0, vocab, 1f, [(hot, 30f)]);
            Assert.Contains(batch.Ids[0], allowed);
        }
    }

    [Fact]
    public void SamplingAConstrainedRequestOnTheEngineOnlyEmitsAllowedTokensAndAdvancesItsConstraint()
    {
        using var engine = Engine("auto");
        var constraint = new EvenTokens();
        engine.Frontend.Constraints = (request, sample) => request.RequestId == "even" ? constraint : null;
        var r = Req("even", 11, 20, new SamplingParams { MaxTokens = 12, Temperature = 0.8f, Seed = 4, IgnoreEos = true });
        var tokens = EngineDriver.RunAll(engine, [r])["even"].Tokens[0];
        Assert.Equal(12, tokens.Count);
        Assert.All(tokens, t => Assert.Equal(0, t % 2));
        Assert.Equal(tokens, constraint.Seen);
    }

    /// <summary>A toy constraint: even token ids only.</summary>
    private sealed class EvenTokens : ITokenConstraint
    {
        public List<int> Seen { get; } = [];

        public void FillAllowed(Span<uint> allowed) => allowed.Fill(0x55555555u);

        public void Advance(int token) => Seen.Add(token);
    }

    private static SamplingBatch Clone(SamplingBatch b)
    {
        var c = new SamplingBatch();
        c.AddSlot(b.LogitRow[0], b.Temperature[0], b.TopK[0], b.TopP[0], b.MinP[0], b.Uniform[0], b.WantLogprob[0] ? b.TopLogprobs : null);
        for (int a = 0; a < b.AdjustCount; a++) c.AddAdjustment(0, b.AdjustToken[a], b.AdjustDivide[a], b.AdjustSubtract[a]);
        return c;
    }

    [Fact]
    public void SamplingAnEngineOptionOutsideAutoHostDeviceIsRejected()
    {
        var e = Assert.Throws<EngineRequestException>(() => f.NewEngine(new EngineOptions { NumBlocks = 16, Sampling = "gpu" }));
        Assert.Equal("sampling", e.Param);
        // The CPU backend's logits are host memory: every mode samples them in place.
        Assert.Same(f.Backend, ModelRunner.DeviceSamplerFor(f.Backend, "auto"));
        Assert.Same(f.Backend, ModelRunner.DeviceSamplerFor(f.Backend, "host"));
    }
}
