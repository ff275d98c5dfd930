using System.Diagnostics;
using Loom.Silo.Models;

using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Simulation;

/// <summary>
/// A model runner that computes nothing: each step takes the time a cost model of a GPU says it
/// would (a fixed overhead plus a per-token cost) and yields a deterministic token per sampling row.
/// The engine's scheduling, KV blocks and sampling run unchanged, so one machine can host many
/// "workers" to test routing and scale-out honestly.
/// </summary>
/// <remarks>
/// The next token is a hash of (previous token, position), the one likely token of a row that is
/// otherwise flat (logit 10 against 0), sampled sparsely by <see cref="SparseRowSampler"/> with the
/// engine's one algorithm: greedy and seeded requests are reproducible on any worker, which is what
/// failover tests need, and no step touches a vocabulary-sized row. Waiting is a
/// sleep against a virtual clock, so sub-millisecond costs add up correctly over many steps while the
/// thread yields its core (a spin would steal it from the other simulated workers).
/// </remarks>
public sealed class SimulatedModelRunner(int vocabSize, double stepOverheadMs, double perTokenMs) : IModelRunner
{
    private readonly long _start = Stopwatch.GetTimestamp();
    private double _virtualMs;
    private readonly Loom.Kernels.SamplingBatch _batch = new();
    private readonly SamplingSlots _slots = new();
    private readonly SparseRowSampler _sampler = new();
    private SampleResult[] _results = new SampleResult[8];

    /// <summary>A small made-up model shape: it only sizes KV blocks (a few KiB each) and gives vocab and context length.</summary>
    public static ModelConfig Config(int vocabSize, int maxModelLen) => new()
    {
        Architecture = ModelArchitecture.Llama,
        ArchitectureName = "SimulatedForCausalLM",
        HiddenSize = 64,
        IntermediateSize = 128,
        NumLayers = 2,
        NumHeads = 4,
        NumKvHeads = 2,
        HeadDim = 16,
        VocabSize = vocabSize,
        RmsNormEps = 1e-5,
        MaxPositionEmbeddings = maxModelLen > 0 ? maxModelLen : 4096,
        EosTokenIds = [0],
    };

    public ReadOnlySpan<SampleResult> Execute(SchedulerOutput step)
    {
        Wait(stepOverheadMs + perTokenMs * step.NumTokens);
        _batch.Clear();
        int rows = 0;
        foreach (var s in step.Scheduled)
        {
            if (!s.Samples) continue;
            _slots.Add(_batch, rows++, s.Sequence.Sampling, vocabSize);
        }
        if (rows == 0) return [];
        _batch.PrepareOutputs();
        if (_results.Length < rows) _results = new SampleResult[Math.Max(rows, 2 * _results.Length)];
        int slot = 0;
        foreach (var s in step.Scheduled)
        {
            if (!s.Samples) continue;
            var tokens = s.Sequence.Tokens;
            int pos = s.Sequence.NumComputedTokens + s.NumNewTokens - 1;
            // The row is 0 everywhere but the predicted token (10): sampled without ever being built.
            _sampler.Sample(_batch, slot, vocabSize, 0f, [(NextToken(tokens[pos], pos, vocabSize), 10f)]);
            _results[slot] = SamplingSlots.Result(_batch, slot, s.Sequence.Sampling.Params);
            slot++;
        }
        return _results.AsSpan(0, rows);
    }

    /// <summary>The token the simulated model predicts after <paramref name="token"/> at <paramref name="position"/>; never 0 (the EOS id).</summary>
    public static int NextToken(int token, int position, int vocabSize)
    {
        ulong h = unchecked((ulong)token * 0x9E3779B97F4A7C15UL ^ (ulong)position * 0xC2B2AE3D27D4EB4FUL);
        h ^= h >> 29;
        h = unchecked(h * 0xBF58476D1CE4E5B9UL);
        h ^= h >> 32;
        return 1 + (int)(h % (ulong)(vocabSize - 1));
    }

    private void Wait(double costMs)
    {
        double now = Stopwatch.GetElapsedTime(_start).TotalMilliseconds;
        // An idle engine does not bank time: the clock restarts from now after a pause.
        _virtualMs = Math.Max(_virtualMs, now) + costMs;
        double ahead = _virtualMs - now;
        if (ahead >= 1) Thread.Sleep(TimeSpan.FromMilliseconds(Math.Floor(ahead)));
    }

    public void Dispose()
    {
    }
}
