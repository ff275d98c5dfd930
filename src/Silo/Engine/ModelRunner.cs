using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Silo.Engine;

/// <summary>
/// Turns a scheduler step into one flat <see cref="ForwardBatch"/> (tokens, positions, slot
/// mapping, block tables) and runs the model. Only the rows that sample come back to the host.
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
    private Tensor? _deviceLogits;
    private float[] _logits = [];

    /// <summary>A runner over one model on one backend; it owns <paramref name="cache"/>.</summary>
    public ModelRunner(LlamaModel model, KvCache cache, IKvCacheManager kv, int maxModelLen, IDeviceSampler? deviceSampler = null)
        : this(new SingleDeviceModel(model, cache), cache.Spec.BlockSize, kv, maxModelLen, deviceSampler)
    {
    }

    /// <summary>A runner over <paramref name="model"/>, whose KV pool is allocated; the runner frees the pool when disposed.</summary>
    /// <param name="deviceSampler">When set, logits stay where the model computed them and the engine samples through it.</param>
    public ModelRunner(IForwardModel model, int blockSize, IKvCacheManager kv, int maxModelLen, IDeviceSampler? deviceSampler = null)
    {
        _model = model;
        _deviceSampler = deviceSampler;
        _kv = kv;
        _blockSize = blockSize;
        _maxBlocksPerSeq = (maxModelLen + _blockSize - 1) / _blockSize;
    }

    public bool SamplesOnDevice => _deviceSampler is not null;

    /// <summary>The device sampler for <paramref name="mode"/> (EngineOptions.Sampling) on <paramref name="backend"/>, or null for host sampling.</summary>
    public static IDeviceSampler? DeviceSamplerFor(IBackend backend, string mode) => mode switch
    {
        "host" => null,
        "device" => backend as IDeviceSampler ?? new Loom.Kernels.Cpu.ReferenceDeviceSampler(backend),
        _ => backend as IDeviceSampler,
    };

    public void SampleOnDevice(SamplingBatch batch)
    {
        if (_deviceSampler is null || _deviceLogits is null) throw new InvalidOperationException("no device logits to sample: the runner samples on the host, or no step ran");
        _deviceSampler.Sample(_deviceLogits, batch);
    }

    public void CopyBlock(BlockCopy copy) => _model.CopyKvBlocks([copy.SrcBlockId], [copy.DstBlockId]);

    public void Dispose() => _model.FreeKvCache();

    /// <summary>
    /// Runs the step and returns logits [rows, vocab] for the scheduled sequences that sample, in
    /// scheduling order. The span is valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Execute(SchedulerOutput step)
    {
        var scheduled = step.Scheduled;
        var b = _batch;
        b.EnsureCapacity(step.NumTokens, scheduled.Count, _maxBlocksPerSeq);
        var meta = b.Attention;
        meta.NumSeqs = scheduled.Count;
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
            if (scheduled[s].Samples) b.LogitRows[rows++] = t - 1;
        }
        meta.QueryStart[scheduled.Count] = t;
        b.NumTokens = t;
        b.NumLogitRows = rows;
        var logits = _model.Forward(b);
        if (_deviceSampler is not null)
        {
            _deviceLogits = logits;
            return [];
        }
        int vocab = _model.Config.VocabSize;
        if (_logits.Length < rows * vocab) _logits = new float[Math.Max(rows, 8) * vocab];
        var host = _logits.AsSpan(0, rows * vocab);
        _model.Backend.CopyToHost(logits, host);
        return host;
    }
}
