using Loom.Grains.Abstractions;
using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Engine;

namespace Loom.Silo.Tests.Engine;

/// <summary>
/// The engine's GPU sampling path, driven on the CPU through the device algorithm's C# twin
/// (<see cref="ReferenceDeviceSampler"/>, the oracle tests/GpuCheck holds the CUDA kernels to):
/// the same tokens as the host sampler where the two must agree, the same support where they draw
/// differently, and batch invariance.
/// </summary>
public sealed class CudaDeviceSamplingTests(EngineFixture f) : IClassFixture<EngineFixture>
{
    private EngineLoop Engine(string sampling, int maxNumSeqs = 32) =>
        f.NewEngine(new EngineOptions { NumBlocks = 256, MaxNumBatchedTokens = 96, MaxNumSeqs = maxNumSeqs, Sampling = sampling });

    private static EngineRequest Req(string id, int seed, int promptLength, SamplingParams p) => new(id, EngineDriver.Prompt(seed, promptLength), p);

    /// <summary>Greedy requests with every adjustment the device applies: penalties, min_tokens masks, logprobs, n = 2.</summary>
    private static List<EngineRequest> GreedyLoad() =>
    [
        Req("plain", 1, 20, new() { MaxTokens = 12, Temperature = 0, IgnoreEos = true, Logprobs = 5 }),
        Req("repetition", 2, 35, new() { MaxTokens = 16, Temperature = 0, IgnoreEos = true, RepetitionPenalty = 1.8f, Logprobs = 3 }),
        Req("frequency", 3, 9, new() { MaxTokens = 20, Temperature = 0, IgnoreEos = true, FrequencyPenalty = 1.5f, PresencePenalty = 0.7f }),
        Req("min_tokens", 4, 14, new() { MaxTokens = 10, MinTokens = 8, Temperature = 0, StopTokenIds = [.. Enumerable.Range(0, 512).Where(i => i % 3 == 0)] }),
        Req("n2", 5, 27, new() { MaxTokens = 9, Temperature = 0, IgnoreEos = true, N = 2, Logprobs = 2 }),
        Req("all", 6, 50, new() { MaxTokens = 14, Temperature = 0, IgnoreEos = true, RepetitionPenalty = 0.7f, FrequencyPenalty = -0.5f, PresencePenalty = 1f, Logprobs = 0 }),
    ];

    [Fact]
    public void GreedyOnTheDevicePathEqualsTheHostSampler()
    {
        var load = GreedyLoad();
        using var host = Engine("host");
        using var device = Engine("device");
        var want = EngineDriver.RunAll(host, load);
        var got = EngineDriver.RunAll(device, load);
        foreach (var r in load)
        {
            var (w, g) = (want[r.RequestId], got[r.RequestId]);
            for (int i = 0; i < r.Sampling.N; i++) Assert.Equal(w.Tokens[i], g.Tokens[i]);
            Assert.Equal(w.Deltas.Count, g.Deltas.Count);
            for (int d = 0; d < w.Deltas.Count; d++)
            {
                Assert.Equal(w.Deltas[d].Finish, g.Deltas[d].Finish);
                if (w.Deltas[d].TokenId < 0) continue;
                Assert.Equal((double)w.Deltas[d].Logprob!, (double)g.Deltas[d].Logprob!, 1e-4);
                if (w.Deltas[d].TopLogprobs is not { } wt) { Assert.Null(g.Deltas[d].TopLogprobs); continue; }
                var gt = g.Deltas[d].TopLogprobs!;
                Assert.Equal(wt.Select(t => t.TokenId), gt.Select(t => t.TokenId));
                for (int k = 0; k < wt.Count; k++) Assert.Equal(wt[k].Logprob, gt[k].Logprob, 1e-4f);
            }
        }
        // The min_tokens request was masked: none of its first 8 tokens is a stop id.
        Assert.All(got["min_tokens"].Tokens[0].Take(8), t => Assert.NotEqual(0, t % 3));
        Assert.Equal(0, device.GetStats().UsedBlocks);
    }

    /// <summary>Seeded draws with truncation: alone equals in a 32-request batch, and a rerun repeats them.</summary>
    [Fact]
    public void SeededDeviceSamplingIsBatchInvariantAndReproducible()
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

    /// <summary>The device keeps exactly the host sampler's support (top-k, then top-p renormalised, min_p first).</summary>
    [Theory]
    [MemberData(nameof(SamplerSupportTests.Truncations), MemberType = typeof(SamplerSupportTests))]
    public void TheDeviceKeepsTheHostSamplersSupport(float t, int topK, float topP, float minP)
    {
        const int vocab = 151_936;
        var logits = SamplerTestKit.PeakedLogits(vocab, topK + (int)(topP * 1000) + (int)(minP * 1e4));
        var p = new SamplingParams { Temperature = t, TopK = topK, TopP = topP, MinP = minP };
        var probs = new float[vocab];
        float tau = ReferenceDeviceSampler.KeepThreshold(logits, probs, t, topK, topP, minP, logits.Max());
        int[] kept = [.. Enumerable.Range(0, vocab).Where(j => probs[j] >= tau)];
        Assert.Equal(new Sampler().Support(logits, p), kept);
    }

    /// <summary>With no top-k/top-p both walk the kept mass in id order: the same u draws the same token.</summary>
    [Fact]
    public void WithoutTopKOrTopPTheSameUniformDrawsTheSameTokenAsTheHost()
    {
        const int vocab = 4096;
        var probs = new float[vocab];
        var sampler = new Sampler(vocab);
        int differ = 0;
        for (int c = 0; c < 300; c++)
        {
            var logits = SamplerTestKit.PeakedLogits(vocab, c);
            float t = 0.5f + c % 5 * 0.25f, minP = c % 3 == 0 ? 0.02f : 0f;
            var state = new SamplingState(new SamplingParams { Temperature = t, MinP = minP, Seed = (ulong)c, IgnoreEos = true }, [1, 2, 3], []);
            int host = sampler.Sample(logits, state).Token;
            int dev = ReferenceDeviceSampler.Pick(logits, probs, t, 0, 1f, minP, (float)state.NextUniform());
            if (host != dev) differ++;
        }
        // u is rounded to float for the device; a draw within 2^-24 of a token boundary may differ.
        Assert.True(differ <= 1, $"{differ} of 300 draws differ");
    }

    [Fact]
    public void AnEngineOptionOutsideAutoHostDeviceIsRejected()
    {
        var e = Assert.Throws<EngineRequestException>(() => f.NewEngine(new EngineOptions { NumBlocks = 16, Sampling = "gpu" }));
        Assert.Equal("sampling", e.Param);
        Assert.Null(ModelRunner.DeviceSamplerFor(f.Backend, "auto")); // the CPU backend samples on the host
        Assert.IsType<ReferenceDeviceSampler>(ModelRunner.DeviceSamplerFor(f.Backend, "device"));
    }
}
