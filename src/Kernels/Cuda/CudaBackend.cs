using Loom.Kernels.Cpu;
using Loom.Kernels.Cuda.Interop;

namespace Loom.Kernels.Cuda;

/// <summary>
/// <see cref="IBackend"/> on one NVIDIA GPU: PTX kernels from Cuda/Kernels launched through the
/// Driver API, cuBLAS (bf16 tensor cores, fp32 accumulation) for the linear layers. Activations
/// are fp32 on the device; weights bf16 (fp32 for norms and biases); the KV pool bf16. The host
/// spans the interface passes (token ids, positions, slots, block tables) are copied into a pinned
/// host ring and uploaded asynchronously on the stream into grow-only device buffers, one per
/// purpose; an upload identical to the purpose's last one (every layer's slot mapping and block
/// tables in a step) is skipped. Sampling runs on the device (<see cref="IDeviceSampler"/>).
/// Not yet run on hardware: tests/GpuCheck checks every op against <see cref="CpuBackend"/> on a device.
/// </summary>
public sealed unsafe class CudaBackend : IBackend, IDeviceSampler
{
    private const long PinnedRingBytes = 8L << 20;

    private readonly CudaDevice _dev;
    private readonly Dictionary<string, (nint Ptr, long Bytes)> _staging = [];
    private readonly Dictionary<string, byte[]> _lastStaged = [];
    private byte* _pinned;
    private long _pinnedBytes, _pinnedUsed;

    public CudaBackend(int ordinal = 0) => _dev = new CudaDevice(ordinal);

    public string Name => $"cuda:{_dev.Name}";

    /// <summary>The stream every op of this backend runs on (NCCL's all-reduce joins it).</summary>
    public nint Stream => _dev.Stream;

    /// <summary>Makes this device's context current on the calling thread (for NCCL calls made outside the backend).</summary>
    public void MakeCurrent() => _dev.MakeCurrent();

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        var t = new Tensor(0, dtype, shape, null);
        return new Tensor(_dev.Alloc(t.ByteLength), dtype, shape, _dev.Free);
    }

    public Tensor Upload(WeightView source, DType dtype)
    {
        // The device stores fp32 or bf16; f16 weights become bf16.
        var target = dtype == DType.F32 ? DType.F32 : DType.BF16;
        var host = new byte[source.ElementCount * target.Size()];
        fixed (byte* h = host) DTypeConvert.Convert((void*)source.Data, source.DType, h, target, source.ElementCount);
        var t = Allocate(target, source.Shape);
        fixed (byte* h = host) CuDriver.Check(CuDriver.cuMemcpyHtoD_v2(t.Data, h, (nuint)host.Length), nameof(CuDriver.cuMemcpyHtoD_v2));
        return t;
    }

    public LinearWeight PrepareLinear(IReadOnlyList<WeightView> parts)
    {
        int k = parts[0].Shape[1], n = 0;
        foreach (var p in parts)
        {
            if (p.Shape.Length != 2 || p.Shape[1] != k) throw new ArgumentException($"linear parts must be [N,{k}]; '{p.Name}' is [{string.Join(",", p.Shape)}]");
            n += p.Shape[0];
        }
        var host = new ushort[(long)n * k];
        long at = 0;
        fixed (ushort* h = host)
            foreach (var p in parts)
            {
                DTypeConvert.Convert((void*)p.Data, p.DType, h + at, DType.BF16, p.ElementCount);
                at += p.ElementCount;
            }
        var w = Allocate(DType.BF16, n, k);
        fixed (ushort* h = host) CuDriver.Check(CuDriver.cuMemcpyHtoD_v2(w.Data, h, (nuint)(host.Length * 2)), nameof(CuDriver.cuMemcpyHtoD_v2));
        return new CudaLinearWeight(w, n, k);
    }

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output)
    {
        _dev.MakeCurrent();
        nint d = Stage("ids", ids);
        var kernel = table.DType == DType.F32 ? "embedding_f32" : "embedding_bf16";
        _dev.Launch(kernel, CudaLaunch.PerRow(ids.Length, table.Cols), table.Data, d, output.Data, table.Cols);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output)
    {
        _dev.MakeCurrent();
        _dev.Launch("rms_norm", CudaLaunch.PerRow(x.Rows, x.Cols), x.Data, weight.Data, output.Data, x.Cols, eps);
    }

    public void AddRmsNorm(Tensor x, Tensor residual, Tensor weight, float eps, Tensor output)
    {
        _dev.MakeCurrent();
        _dev.Launch("fused_add_rms_norm", CudaLaunch.PerRow(x.Rows, x.Cols), x.Data, residual.Data, weight.Data, output.Data, x.Cols, eps);
    }

    public void Linear(Tensor x, LinearWeight weight, Tensor? bias, Tensor output)
    {
        _dev.MakeCurrent();
        var w = (CudaLinearWeight)weight;
        int m = x.Rows, k = x.Cols;
        if (k != w.InFeatures || output.Cols != w.OutFeatures || output.Rows != m)
            throw new ArgumentException($"linear: x [{m},{k}] · W[{w.OutFeatures},{w.InFeatures}]ᵀ into [{output.Rows},{output.Cols}]");
        long n = (long)m * k;
        nint xb = Scratch("x_bf16", n * 2);
        _dev.Launch("f32_to_bf16", CudaLaunch.Elementwise(n), x.Data, xb, n);
        CuBlas.LinearRowMajor(_dev.Blas, m, w.OutFeatures, k, xb, CuBlas.R16BF, w.Tensor.Data, CuBlas.R16BF, output.Data, CuBlas.R32F);
        if (bias is not null) _dev.Launch("add_bias", CudaLaunch.PerRow(m, output.Cols), output.Data, bias.Data, output.Cols);
    }

    public void CopyColumns(Tensor source, int columnOffset, Tensor output)
    {
        _dev.MakeCurrent();
        _dev.Launch("copy_columns", CudaLaunch.PerRow(source.Rows, output.Cols), source.Data, source.Cols, columnOffset, output.Data, output.Cols);
    }

    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, float attentionScaling)
    {
        _dev.MakeCurrent();
        int heads = x.Cols / headDim;
        nint pos = Stage("positions", positions);
        nint freq = Stage("inv_freq", invFreq);
        var shape = new LaunchShape((uint)x.Rows, (uint)heads, 1, (uint)Math.Clamp((invFreq.Length + 31) / 32 * 32, 32, 1024), 0);
        _dev.Launch("rope_rotate_half", shape, x.Data, pos, freq, heads, headDim, invFreq.Length, attentionScaling);
    }

    public void SiluAndMul(Tensor gateUp, Tensor output)
    {
        _dev.MakeCurrent();
        _dev.Launch("silu_and_mul", CudaLaunch.PerRow(output.Rows, output.Cols), gateUp.Data, output.Data, output.Cols);
    }

    public void Add(Tensor a, Tensor b, Tensor output)
    {
        _dev.MakeCurrent();
        _dev.Launch("add_f32", CudaLaunch.Elementwise(a.ElementCount), a.Data, b.Data, output.Data, a.ElementCount);
    }

    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor output)
    {
        if (rows.Length == 0) return;
        _dev.MakeCurrent();
        nint r = Stage("rows", rows);
        _dev.Launch("gather_rows", CudaLaunch.PerRow(rows.Length, x.Cols), x.Data, r, output.Data, x.Cols);
    }

    public KvCache AllocateKvCache(KvCacheSpec spec) => new CudaKvCache(spec, _dev);

    public void WriteKv(KvCache cache, int layer, Tensor k, Tensor v, ReadOnlySpan<int> slotMapping)
    {
        _dev.MakeCurrent();
        var c = (CudaKvCache)cache;
        nint slots = Stage("slots", slotMapping);
        _dev.Launch("reshape_and_cache", CudaLaunch.PerRow(k.Rows, k.Cols), k.Data, v.Data, c.K(layer), c.V(layer), slots,
            c.Spec.NumKvHeads, c.Spec.HeadDim, c.Spec.BlockSize);
    }

    public void PagedAttention(Tensor q, KvCache cache, int layer, AttentionMetadata meta, int numHeads, float scale, Tensor output)
    {
        _dev.MakeCurrent();
        var c = (CudaKvCache)cache;
        var spec = c.Spec;
        int seqs = meta.NumSeqs, tokens = meta.NumTokens, maxLen = 0;
        bool decode = true;
        for (int s = 0; s < seqs; s++)
        {
            maxLen = Math.Max(maxLen, meta.SeqLens[s]);
            decode &= meta.QueryLen(s) == 1;
        }
        nint qs = Stage("query_start", meta.QueryStart.AsSpan(0, seqs + 1));
        nint lens = Stage("seq_lens", meta.SeqLens.AsSpan(0, seqs));
        nint tables = Stage("block_tables", meta.BlockTables.AsSpan(0, seqs * meta.MaxBlocksPerSeq));
        if (decode)
        {
            var shape = CudaLaunch.Decode(numHeads, seqs, maxLen, spec.HeadDim);
            int partitions = (int)shape.GridZ;
            var (stats, outs) = CudaLaunch.DecodeScratch(numHeads, seqs, maxLen, spec.HeadDim);
            nint pmax = partitions > 1 ? Scratch("part_max", stats * 4) : 0, psum = partitions > 1 ? Scratch("part_sum", stats * 4) : 0;
            nint pout = partitions > 1 ? Scratch("part_out", outs * 4) : 0;
            _dev.Launch("paged_attention_decode", shape, q.Data, c.K(layer), c.V(layer), qs, lens, tables, meta.MaxBlocksPerSeq,
                numHeads, spec.NumKvHeads, spec.HeadDim, spec.BlockSize, scale, output.Data, pmax, psum, pout, partitions);
            if (partitions > 1)
                _dev.Launch("paged_attention_reduce", new LaunchShape((uint)numHeads, (uint)seqs, 1, (uint)Math.Clamp((spec.HeadDim + 31) / 32 * 32, 32, 1024), 0),
                    pmax, psum, pout, qs, lens, numHeads, spec.HeadDim, partitions, output.Data);
        }
        else
        {
            _dev.Launch("paged_attention_prefill", CudaLaunch.Prefill(numHeads, tokens, spec.HeadDim), q.Data, c.K(layer), c.V(layer), qs, seqs, lens, tables,
                meta.MaxBlocksPerSeq, numHeads, spec.NumKvHeads, spec.HeadDim, spec.BlockSize, scale, output.Data);
        }
    }

    public void CopyToHost(Tensor source, Span<float> destination)
    {
        _dev.MakeCurrent();
        SyncStream();
        fixed (float* d = destination)
            CuDriver.Check(CuDriver.cuMemcpyDtoH_v2(d, source.Data, (nuint)(source.ElementCount * 4)), nameof(CuDriver.cuMemcpyDtoH_v2));
    }

    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination)
    {
        _dev.MakeCurrent();
        SyncStream();
        fixed (float* s = source)
            CuDriver.Check(CuDriver.cuMemcpyHtoD_v2(destination.Data, s, (nuint)(source.Length * 4)), nameof(CuDriver.cuMemcpyHtoD_v2));
    }

    public void Synchronize()
    {
        _dev.MakeCurrent();
        SyncStream();
    }

    /// <summary>Waits for the stream; every async upload has then read its pinned bytes, so the ring starts over.</summary>
    private void SyncStream()
    {
        _dev.Synchronize();
        _pinnedUsed = 0;
    }

    /// <summary>Free and total device memory, for sizing the KV pool.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        _dev.MakeCurrent();
        CuDriver.Check(CuDriver.cuMemGetInfo_v2(out nuint free, out nuint total), nameof(CuDriver.cuMemGetInfo_v2));
        return ((long)free, (long)total);
    }

    private nint Scratch(string purpose, long bytes)
    {
        if (_staging.TryGetValue(purpose, out var s) && s.Bytes >= bytes) return s.Ptr;
        if (s.Ptr != 0)
        {
            SyncStream(); // a kernel may still read the old buffer
            _dev.Free(s.Ptr);
        }
        long size = Math.Max(bytes, 2 * s.Bytes);
        var p = _dev.Alloc(size);
        _staging[purpose] = (p, size);
        return p;
    }

    /// <summary>
    /// Copies host values into the purpose's device buffer, asynchronously on the stream (so after
    /// every kernel already queued that reads the buffer): the values go through the pinned ring,
    /// which a host memcpy fills and only a stream sync recycles.
    /// </summary>
    private nint Stage<T>(string purpose, ReadOnlySpan<T> values)
        where T : unmanaged
    {
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values);
        nint before = _staging.TryGetValue(purpose, out var had) ? had.Ptr : 0;
        nint p = Scratch(purpose, Math.Max(bytes.Length, 4));
        if (before == p && _lastStaged.TryGetValue(purpose, out var last) && bytes.SequenceEqual(last)) return p;
        if (bytes.Length == 0) return p;
        long aligned = (bytes.Length + 255) & ~255L;
        if (_pinnedUsed + aligned > _pinnedBytes)
        {
            SyncStream();
            if (aligned > _pinnedBytes)
            {
                if (_pinned != null) CuDriver.cuMemFreeHost(_pinned);
                _pinnedBytes = Math.Max(PinnedRingBytes, 2 * aligned);
                CuDriver.Check(CuDriver.cuMemAllocHost_v2(out void* host, (nuint)_pinnedBytes), nameof(CuDriver.cuMemAllocHost_v2));
                _pinned = (byte*)host;
            }
        }
        byte* src = _pinned + _pinnedUsed;
        _pinnedUsed += aligned;
        bytes.CopyTo(new Span<byte>(src, bytes.Length));
        CuDriver.Check(CuDriver.cuMemcpyHtoDAsync_v2(p, src, (nuint)bytes.Length, _dev.Stream), nameof(CuDriver.cuMemcpyHtoDAsync_v2));
        if (!_lastStaged.TryGetValue(purpose, out var copy) || copy.Length != bytes.Length) _lastStaged[purpose] = copy = new byte[bytes.Length];
        bytes.CopyTo(copy);
        return p;
    }

    /// <summary>Waits for the stream and copies device values to the host.</summary>
    private void Download<T>(nint source, Span<T> destination)
        where T : unmanaged
    {
        if (destination.IsEmpty) return;
        fixed (T* d = destination)
            CuDriver.Check(CuDriver.cuMemcpyDtoH_v2(d, source, (nuint)(destination.Length * sizeof(T))), nameof(CuDriver.cuMemcpyDtoH_v2));
    }

    /// <summary>
    /// The step's sampling on the device: gather each slot's logits row, apply the sparse
    /// adjustments, sample, and bring back only the ids and logprobs (see <see cref="SamplingBatch"/>).
    /// </summary>
    public void Sample(Tensor logits, SamplingBatch batch)
    {
        int n = batch.Count;
        if (n == 0) return;
        _dev.MakeCurrent();
        int vocab = logits.Cols;
        batch.PrepareOutputs();
        nint rows = Stage("sample_rows", batch.LogitRow.AsSpan(0, n));
        nint adjusted = Scratch("sample_adjusted", (long)n * vocab * 4);
        _dev.Launch("gather_rows", CudaLaunch.PerRow(n, vocab), logits.Data, rows, adjusted, vocab);
        if (batch.AdjustCount is int a and > 0)
            _dev.Launch("logits_adjust", CudaLaunch.Elementwise(a), adjusted, vocab, a, Stage("adjust_slot", batch.AdjustSlot.AsSpan(0, a)),
                Stage("adjust_token", batch.AdjustToken.AsSpan(0, a)), Stage("adjust_divide", batch.AdjustDivide.AsSpan(0, a)),
                Stage("adjust_subtract", batch.AdjustSubtract.AsSpan(0, a)));
        if (batch.HasMasks)
            _dev.Launch("apply_mask", CudaLaunch.PerSlotTokens(n, vocab), adjusted, vocab,
                Stage("mask_words", batch.MaskWords.AsSpan(0, batch.MaskWordsUsed)),
                Stage("mask_offsets", batch.MaskOffset.AsSpan(0, n)), batch.MaskWordsPerSlot);
        nint ids = Scratch("sample_ids", n * 4L), logprobs = Scratch("sample_logprobs", n * 4L);
        _dev.Launch("sample_rows", CudaLaunch.Sample(n), adjusted, logits.Data, rows, vocab,
            Stage("sample_temperature", batch.Temperature.AsSpan(0, n)), Stage("sample_top_k", batch.TopK.AsSpan(0, n)),
            Stage("sample_top_p", batch.TopP.AsSpan(0, n)), Stage("sample_min_p", batch.MinP.AsSpan(0, n)),
            Stage("sample_uniform", batch.Uniform.AsSpan(0, n)), Stage("sample_want_logprob", batch.WantLogprob.AsSpan(0, n)), ids, logprobs);
        int top = batch.TopLogprobs;
        nint topIds = 0, topValues = 0;
        if (top > 0)
        {
            topIds = Scratch("top_ids", (long)n * top * 4);
            topValues = Scratch("top_values", (long)n * top * 4);
            _dev.Launch("top_logprobs", CudaLaunch.Sample(n), logits.Data, rows, vocab, top, topIds, topValues);
        }
        SyncStream();
        Download(ids, batch.Ids.AsSpan(0, n));
        Download(logprobs, batch.Logprobs.AsSpan(0, n));
        if (top > 0)
        {
            Download(topIds, batch.TopIds.AsSpan(0, n * top));
            Download(topValues, batch.TopValues.AsSpan(0, n * top));
        }
    }

    public void Dispose()
    {
        foreach (var (p, _) in _staging.Values) _dev.Free(p);
        _staging.Clear();
        if (_pinned != null) CuDriver.cuMemFreeHost(_pinned);
        _pinned = null;
        _dev.Dispose();
    }

    private sealed class CudaLinearWeight(Tensor w, int n, int k) : LinearWeight(n, k, DType.BF16)
    {
        public Tensor Tensor { get; } = w;
        public override long ByteLength => Tensor.ByteLength;
        public override void Dispose() => Tensor.Dispose();
    }
}

/// <summary>The paged KV pool in device memory: bf16, per layer [block][kvHead][offset][headDim] for K and V (see kv_cache.cu).</summary>
internal sealed class CudaKvCache : KvCache
{
    private readonly nint[] _k, _v;
    private readonly CudaDevice _dev;

    public CudaKvCache(KvCacheSpec spec, CudaDevice dev)
        : base(spec)
    {
        if (spec.DType != DType.BF16) throw new NotSupportedException($"the CUDA KV cache stores bf16, not {spec.DType} (kv_cache_dtype: bf16)");
        _dev = dev;
        long bytes = (long)spec.NumBlocks * spec.NumKvHeads * spec.BlockSize * spec.HeadDim * 2;
        _k = new nint[spec.NumLayers];
        _v = new nint[spec.NumLayers];
        for (int l = 0; l < spec.NumLayers; l++)
        {
            _k[l] = dev.Alloc(bytes);
            _v[l] = dev.Alloc(bytes);
        }
    }

    public nint K(int layer) => _k[layer];
    public nint V(int layer) => _v[layer];

    public override void Dispose()
    {
        for (int l = 0; l < _k.Length; l++)
        {
            if (_k[l] != 0) _dev.Free(_k[l]);
            if (_v[l] != 0) _dev.Free(_v[l]);
            _k[l] = _v[l] = 0;
        }
    }
}
