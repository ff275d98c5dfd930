using Loom.Kernels;
using Loom.Kernels.Sampling;
using Loom.Silo.Models;

using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// Turns a scheduler step into one flat <see cref="ForwardBatch"/> (tokens, positions, slot
/// mapping, block tables), runs the model and samples: on the backend where the logits are
/// (<see cref="IDeviceSampler"/>: only ids and requested logprobs come back), or on the host from
/// a copy when engine.sampling is host. Either way it is <see cref="SamplingBatch"/>'s algorithm.
/// It owns the KV cache it is given.
/// </summary>
public sealed class ModelRunner : IModelRunner
{
    private readonly IForwardModel _model;
    private readonly IKvCacheManager _kv;
    private readonly int _blockSize;
    private readonly int _maxBlocksPerSeq;
    private readonly ForwardBatch _batch = new();
    private readonly IDeviceSampler? _deviceSampler;
    private readonly TokenSampler _hostSampler = new();
    private readonly SamplingBatch _sampling = new();
    private readonly SamplingSlots _slots = new();
    private SampleResult[] _results = new SampleResult[8];
    private float[] _logits = [];

    /// <summary>A runner over one model on one backend; it owns <paramref name="cache"/>.</summary>
    public ModelRunner(LlamaModel model, KvCache cache, IKvCacheManager kv, int maxModelLen, IDeviceSampler? deviceSampler = null)
        : this(new SingleDeviceModel(model, cache), cache.Spec.BlockSize, kv, maxModelLen, deviceSampler)
    {
    }

    /// <summary>A runner over <paramref name="model"/>, whose KV pool is allocated; the runner frees the pool when disposed.</summary>
    /// <param name="deviceSampler">Samples where the logits are; null: copy them to the host and sample there.</param>
    public ModelRunner(IForwardModel model, int blockSize, IKvCacheManager kv, int maxModelLen, IDeviceSampler? deviceSampler = null)
    {
        _model = model;
        _deviceSampler = deviceSampler;
        _kv = kv;
        _blockSize = blockSize;
        _maxBlocksPerSeq = (maxModelLen + _blockSize - 1) / _blockSize;
    }

    /// <summary>Whether sampling runs where the logits are (always on the CPU backend, whose logits are host memory).</summary>
    public bool SamplesOnDevice => _deviceSampler is not null;

    /// <summary>The sampler for <paramref name="mode"/> (EngineOptions.Sampling) on <paramref name="backend"/>: null means a host copy.</summary>
    public static IDeviceSampler? DeviceSamplerFor(IBackend backend, string mode) => mode == "host" && backend is not Loom.Kernels.Cpu.CpuBackend
        ? null
        : backend as IDeviceSampler;

    public void Dispose() => _model.FreeKvCache();

    public ReadOnlySpan<SampleResult> Execute(SchedulerOutput step)
    {
        var scheduled = step.Scheduled;
        var b = _batch;
        b.EnsureCapacity(step.NumTokens, scheduled.Count, _maxBlocksPerSeq);
        var meta = b.Attention;
        meta.NumSeqs = scheduled.Count;
        _sampling.Clear();
        int t = 0, rows = 0;
        for (int s = 0; s < scheduled.Count; s++)
        {
            var (seq, numNew) = scheduled[s];
            int start = seq.NumComputedTokens;
            var table = _kv.BlockTable(seq.Id);
            var tokens = seq.Tokens;
            meta.QueryStart[s] = t;
            meta.SeqLens[s] = start + numNew;
            table.CopyTo(meta.BlockTables.AsSpan(s * _maxBlocksPerSeq, _maxBlocksPerSeq));
            for (int i = 0; i < numNew; i++, t++)
            {
                int pos = start + i;
                b.TokenIds[t] = tokens[pos];
                b.Positions[t] = pos;
                b.SlotMapping[t] = table[pos / _blockSize] * _blockSize + pos % _blockSize;
            }
            if (scheduled[s].Samples)
            {
                b.LogitRows[rows] = t - 1;
                _slots.Add(_sampling, rows++, seq.Sampling, _model.Config.VocabSize);
            }
        }
        meta.QueryStart[scheduled.Count] = t;
        b.NumTokens = t;
        b.NumLogitRows = rows;
        var logits = _model.Forward(b);
        if (rows == 0) return [];
        if (_deviceSampler is not null)
        {
            _deviceSampler.Sample(logits, _sampling);
        }
        else
        {
            int vocab = _model.Config.VocabSize;
            if (_logits.Length < rows * vocab) _logits = new float[Math.Max(rows, 8) * vocab];
            var host = _logits.AsSpan(0, rows * vocab);
            _model.Backend.CopyToHost(logits, host);
            _hostSampler.Sample(host, vocab, _sampling);
        }
        if (_results.Length < rows) _results = new SampleResult[Math.Max(rows, 2 * _results.Length)];
        int slot = 0;
        foreach (var s in scheduled)
            if (s.Samples) _results[slot] = SamplingSlots.Result(_sampling, slot++, s.Sequence.Sampling.Params);
        return _results.AsSpan(0, rows);
    }
}
