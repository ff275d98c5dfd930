using Loom.Grains.Abstractions;
using Loom.Kernels;
using Loom.Kernels.Sampling;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

/// <summary>Shared helpers for the sampler tests.</summary>
internal static class SamplerTestKit
{
    public static SamplingState State(SamplingParams p, int[]? prompt = null, int[]? eos = null, int sampleIndex = 0)
        => new(p, prompt ?? [], eos ?? [], sampleIndex);

    /// <summary>Logits whose softmax is exactly <paramref name="probs"/>.</summary>
    public static float[] LogitsOf(params double[] probs) => [.. probs.Select(x => (float)Math.Log(x))];

    /// <summary>Draws <paramref name="draws"/> tokens from fixed logits (penalties off, so appending
    /// only advances the counter) and counts them per token.</summary>
    public static int[] Histogram(float[] logits, SamplingParams p, int draws, ulong seed = 1234)
    {
        var sampler = new Sampler();
        var state = State(p with { Seed = seed, MaxTokens = draws });
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++)
        {
            int t = sampler.Sample(logits, state).Token;
            counts[t]++;
            state.Append(t);
        }
        return counts;
    }

    public static double[] Softmax(ReadOnlySpan<float> logits, double temperature = 1)
    {
        double max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var e = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < e.Length; i++) sum += e[i] = Math.Exp((logits[i] - max) / temperature);
        for (int i = 0; i < e.Length; i++) e[i] /= sum;
        return e;
    }

    public static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        double lse = max + Math.Log(sum);
        var r = new double[logits.Length];
        for (int i = 0; i < r.Length; i++) r[i] = logits[i] - lse;
        return r;
    }

    /// <summary>Pearson's chi-square of observed counts against expected probabilities.</summary>
    public static double ChiSquare(int[] counts, double[] probs)
    {
        int total = counts.Sum();
        double chi = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            if (probs[i] == 0) { Assert.Equal(0, counts[i]); continue; }
            double e = probs[i] * total;
            chi += (counts[i] - e) * (counts[i] - e) / e;
        }
        return chi;
    }

    public static float[] RandomLogits(int vocab, int seed, float scale = 3f)
    {
        var rng = new Random(seed);
        var x = new float[vocab];
        for (int i = 0; i < vocab; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }

    /// <summary>Peaked like a model: normal-ish logits plus a handful of strong tokens.</summary>
    public static float[] PeakedLogits(int vocab, int seed)
    {
        var rng = new Random(seed);
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++) logits[i] = (float)((rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 4);
        for (int i = 0; i < 20; i++) logits[rng.Next(vocab)] += 12f;
        return logits;
    }

    public static int[] Support(int[] counts) => [.. Enumerable.Range(0, counts.Length).Where(i => counts[i] > 0)];
}

/// <summary>
/// One sequence's draw through the engine's one algorithm: a single-slot <see cref="SamplingBatch"/>
/// (the adjustments the engine builds from the state) sampled by <see cref="TokenSampler"/>. The
/// unit tests of the sampling semantics drive it row by row.
/// </summary>
internal sealed class Sampler(int vocabSize = 0)
{
    public const float GreedyTemperature = SamplingBatch.GreedyTemperature;

    private readonly TokenSampler _sampler = new();
    private readonly SamplingBatch _batch = new();
    private readonly SamplingSlots _slots = new();
    private float[] _row = new float[vocabSize];

    public SampleResult Sample(ReadOnlySpan<float> logits, SamplingState state)
    {
        if (_row.Length < logits.Length) _row = new float[logits.Length];
        var row = _row.AsSpan(0, logits.Length);
        logits.CopyTo(row);
        _batch.Clear();
        _slots.Add(_batch, 0, state, logits.Length);
        _sampler.Sample(row, logits.Length, _batch);
        return SamplingSlots.Result(_batch, 0, state.Params);
    }

    /// <summary>The logits after the adjustments the engine builds from <paramref name="state"/> (penalties, min_tokens masks).</summary>
    public float[] Adjusted(ReadOnlySpan<float> logits, SamplingState state)
    {
        var row = logits.ToArray();
        _batch.Clear();
        _slots.Add(_batch, 0, state, logits.Length);
        for (int a = 0; a < _batch.AdjustCount; a++)
            row[_batch.AdjustToken[a]] = TokenSampler.Adjust(row[_batch.AdjustToken[a]], _batch.AdjustDivide[a], _batch.AdjustSubtract[a]);
        return row;
    }

    /// <summary>The ids a random draw can return from these (already penalised) logits, ascending.</summary>
    public int[] Support(ReadOnlySpan<float> logits, SamplingParams p) => _sampler.Support(logits, p.Temperature, p.TopK, p.TopP, p.MinP);

    public static FinishReason? CheckFinish(SamplingState state, int token) => state.Finish(token);

    public static bool IsStopToken(int token, SamplingState state) => state.IsStop(token);
}
