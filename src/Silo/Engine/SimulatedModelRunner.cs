using System.Diagnostics;
using Loom.Silo.Models;

namespace Loom.Silo.Engine;

/// <summary>
/// A model runner that computes nothing: each step takes the time a cost model of a GPU says it
/// would (a fixed overhead plus a per-token cost) and yields a deterministic token per sampling row.
/// The engine's scheduling, KV blocks and sampling run unchanged, so one machine can host many
/// "workers" to test routing and scale-out honestly.
/// </summary>
/// <remarks>
/// The next token is a hash of (previous token, position), given as a one-hot logit row: greedy and
/// seeded requests are reproducible on any worker, which is what failover tests need. Waiting is a
/// sleep against a virtual clock, so sub-millisecond costs add up correctly over many steps while the
/// thread yields its core (a spin would steal it from the other simulated workers).
/// </remarks>
public sealed class SimulatedModelRunner(int vocabSize, double stepOverheadMs, double perTokenMs) : IModelRunner
{
    private readonly long _start = Stopwatch.GetTimestamp();
    private double _virtualMs;
    private float[] _logits = [];

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

    public bool SamplesOnDevice => false;

    public void SampleOnDevice(Loom.Kernels.SamplingBatch batch) => throw new NotSupportedException("the simulated runner samples on the host");

    public ReadOnlySpan<float> Execute(SchedulerOutput step)
    {
        Wait(stepOverheadMs + perTokenMs * step.NumTokens);
        int rows = 0;
        foreach (var s in step.Scheduled) if (s.Samples) rows++;
        if (_logits.Length < rows * vocabSize) _logits = new float[Math.Max(rows, 8) * vocabSize];
        var host = _logits.AsSpan(0, rows * vocabSize);
        host.Clear();
        int row = 0;
        foreach (var s in step.Scheduled)
        {
            if (!s.Samples) continue;
            var tokens = s.Sequence.Tokens;
            int pos = s.Sequence.NumComputedTokens + s.NumNewTokens - 1;
            host[row++ * vocabSize + NextToken(tokens[pos], pos, vocabSize)] = 10f;
        }
        return host;
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

    public void CopyBlock(BlockCopy copy)
    {
        // No KV exists to copy.
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
