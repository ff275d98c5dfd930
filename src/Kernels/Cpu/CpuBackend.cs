using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>
/// The host backend: 64-byte aligned native tensors, packed-panel GEMM and fp32 elementwise
/// kernels, all parallelised on one persistent <see cref="CpuThreadPool"/>. Synchronous.
/// The kernels' instruction set is chosen once, here (<see cref="CpuKernels"/>).
/// </summary>
public sealed unsafe class CpuBackend : IBackend, IDeviceSampler
{
    private readonly Sampling.TokenSampler _sampler = new();
    private readonly CpuThreadPool _pool;
    private readonly CpuKernels _k;
    private readonly ScratchBuffer _gemmScratch = new();
    private readonly ScratchBuffer _attentionScratch = new();
    private readonly RopeTable _rope = new();
    private readonly RopeTable.UseTable<RowOps.Job> _runRope;
    private bool _disposed;

    /// <param name="threads">Worker threads including the caller; 0 = Environment.ProcessorCount.</param>
    /// <param name="isa">The kernel implementation; null = the best this CPU runs.</param>
    /// <exception cref="CpuIsaUnavailableException">A forced <paramref name="isa"/> this process cannot run.</exception>
    public CpuBackend(int threads = 0, CpuIsa? isa = null)
    {
        if (isa is { } forced)
        {
            if (!CpuIsaSelector.IsSupported(forced, out var why)) throw new CpuIsaUnavailableException($"engine.cpu_isa: {CpuIsaSelector.Name(forced)}, but {why}");
            IsaReason = "forced by engine.cpu_isa";
        }
        else
        {
            (isa, IsaReason) = CpuIsaSelector.Describe();
        }

        _k = CpuKernels.For(isa.Value);
        _pool = new CpuThreadPool(threads);
        _runRope = RunRope;
    }

    /// <summary>For example "cpu: avx2+fma (no avx512f)": the device and the kernels chosen for it, with the reason.</summary>
    public string Name => $"cpu: {CpuIsaSelector.Label(Isa)} ({IsaReason})";

    /// <summary>The instruction set the kernels run on.</summary>
    public CpuIsa Isa => _k.Isa;

    /// <summary>Why <see cref="Isa"/> was chosen.</summary>
    public string IsaReason { get; }

    /// <summary>The pool every kernel runs on (exposed for diagnostics and tests).</summary>
    public CpuThreadPool Pool => _pool;

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]");
            n = checked(n * d);
        }

        void* p = NativeBuffer.Alloc(n * dtype.Size());
        return new Tensor((nint)p, dtype, (int[])shape.Clone(), NativeBuffer.Free);
    }

    public Tensor Upload(WeightView source, DType dtype)
    {
        if (source.Data == 0 && source.ElementCount > 0) throw new ArgumentException($"weight '{source.Name}' has no data");
        if (dtype.IsQuantized())
        {
            // Kept as the file's blocks (an embedding table: rows are decoded as they are gathered).
            if (source.DType != dtype) throw new NotSupportedException($"weight '{source.Name}': cannot convert {source.DType} to {dtype}");
            var q = new Tensor((nint)NativeBuffer.Alloc(source.ByteLength), dtype, (int[])source.Shape.Clone(), NativeBuffer.Free);
            Buffer.MemoryCopy((void*)source.Data, (void*)q.Data, source.ByteLength, source.ByteLength);
            return q;
        }

        var t = Allocate(dtype, source.Shape);
        try
        {
            if (dtype == DType.F32) _k.ToF32((void*)source.Data, source.DType, (float*)t.Data, source.ElementCount);
            else DTypeConvert.Convert((void*)source.Data, source.DType, (void*)t.Data, dtype, source.ElementCount);
        }
        catch (NotSupportedException e)
        {
            t.Dispose();
            throw new NotSupportedException($"weight '{source.Name}': {e.Message}", e);
        }

        return t;
    }

    public bool AcceptsQuantizedWeights => true;

    /// <summary>bf16/f16/f32 parts pack into fp32 or bf16 panels; GGUF-quantized parts stay quantized (<see cref="Quant.QuantLinearWeight"/>).</summary>
    public LinearWeight PrepareLinear(IReadOnlyList<WeightView> parts) =>
        parts.Count > 0 && parts[0].DType.IsQuantized() ? Quant.QuantLinearWeight.Pack(parts, _pool) : PackedLinearWeight.Pack(parts, _pool);

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output)
    {
        int h = table.Cols, vocab = table.Rows;
        RequireF32(output, nameof(output));
        if (output.Rows != ids.Length || output.Cols != h)
            throw new ArgumentException($"embedding output is [{output.Rows},{output.Cols}], expected [{ids.Length},{h}]");
        long rowBytes = table.DType.ByteCount(h);
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} outside vocabulary of {vocab}");
            if (table.DType.IsQuantized()) Quant.GgmlBlocks.DequantizeRow(table.DType, (byte*)table.Data + id * rowBytes, (float*)output.Data + (long)i * h, h);
            else _k.ToF32((byte*)table.Data + id * rowBytes, table.DType, (float*)output.Data + (long)i * h, h);
        }
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output)
    {
        CheckNorm(x, weight, output);
        var job = new RowOps.Job
        {
            Kind = RowOps.Op.RmsNorm, Rows = x.Rows, Cols = x.Cols,
            A = (float*)x.Data, C = (float*)output.Data, W = (float*)weight.Data, Eps = eps,
        };
        _k.RowOps(_pool, ref job);
    }

    public void AddRmsNorm(Tensor x, Tensor residual, Tensor weight, float eps, Tensor output)
    {
        CheckNorm(x, weight, output);
        RequireSameShape(x, residual, nameof(residual));
        var job = new RowOps.Job
        {
            Kind = RowOps.Op.AddRmsNorm, Rows = x.Rows, Cols = x.Cols,
            A = (float*)x.Data, B = (float*)residual.Data, C = (float*)output.Data, W = (float*)weight.Data, Eps = eps,
        };
        _k.RowOps(_pool, ref job);
    }

    public void Linear(Tensor x, LinearWeight weight, Tensor? bias, Tensor output)
    {
        if (weight is Quant.QuantLinearWeight qw)
        {
            CheckLinear(x, qw, bias, output);
            _k.QuantLinear(_pool, _gemmScratch, (float*)x.Data, x.Rows, qw, bias is null ? null : (float*)bias.Data, (float*)output.Data);
            return;
        }

        if (weight is not PackedLinearWeight w) throw new ArgumentException("weight was not prepared by the CPU backend", nameof(weight));
        CheckLinear(x, w, bias, output);
        _k.Linear(_pool, _gemmScratch, (float*)x.Data, x.Rows, w, bias is null ? null : (float*)bias.Data, (float*)output.Data);
    }

    private static void CheckLinear(Tensor x, LinearWeight w, Tensor? bias, Tensor output)
    {
        RequireF32(x, nameof(x));
        RequireF32(output, nameof(output));
        if (x.Cols != w.InFeatures) throw new ArgumentException($"x has K={x.Cols}, weight expects K={w.InFeatures}");
        if (output.Rows != x.Rows || output.Cols != w.OutFeatures)
            throw new ArgumentException($"output is [{output.Rows},{output.Cols}], expected [{x.Rows},{w.OutFeatures}]");
        if (bias is not null)
        {
            RequireF32(bias, nameof(bias));
            if (bias.ElementCount != w.OutFeatures) throw new ArgumentException($"bias has {bias.ElementCount} elements, expected {w.OutFeatures}");
        }
    }

    public void CopyColumns(Tensor source, int columnOffset, Tensor output)
    {
        if (source.DType != output.DType) throw new ArgumentException("CopyColumns needs matching dtypes");
        if (output.Rows != source.Rows || columnOffset < 0 || columnOffset + output.Cols > source.Cols)
            throw new ArgumentException($"cannot copy {output.Cols} columns at {columnOffset} of [{source.Rows},{source.Cols}] into [{output.Rows},{output.Cols}]");
        int es = source.DType.Size();
        long rowBytes = (long)output.Cols * es;
        for (long r = 0; r < source.Rows; r++)
        {
            byte* s = (byte*)source.Data + (r * source.Cols + columnOffset) * es;
            Buffer.MemoryCopy(s, (byte*)output.Data + r * rowBytes, rowBytes, rowBytes);
        }
    }

    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, float attentionScaling)
    {
        RequireF32(x, nameof(x));
        if (headDim <= 0 || x.Cols % headDim != 0) throw new ArgumentException($"x.Cols={x.Cols} is not a multiple of headDim={headDim}");
        if (2 * invFreq.Length > headDim) throw new ArgumentException($"{invFreq.Length} frequencies rotate more than headDim={headDim}");
        if (positions.Length != x.Rows) throw new ArgumentException($"{positions.Length} positions for {x.Rows} tokens");
        if (invFreq.Length == 0 || x.Rows == 0) return;
        int maxPos = 0;
        foreach (var p in positions)
        {
            if (p < 0) throw new ArgumentOutOfRangeException(nameof(positions), $"negative position {p}");
            maxPos = Math.Max(maxPos, p);
        }

        fixed (int* pos = positions)
        {
            var job = new RowOps.Job
            {
                Kind = RowOps.Op.Rope, Rows = x.Rows, Cols = x.Cols, A = (float*)x.Data,
                HeadDim = headDim, Half = invFreq.Length, Positions = pos,
            };
            _rope.With(invFreq, attentionScaling, maxPos, ref job, _runRope);
        }
    }

    private void RunRope(float* table, ref RowOps.Job job)
    {
        job.W = table;
        _k.RowOps(_pool, ref job);
    }

    public void SiluAndMul(Tensor gateUp, Tensor output)
    {
        RequireF32(gateUp, nameof(gateUp));
        RequireF32(output, nameof(output));
        if (gateUp.Cols != 2 * output.Cols || gateUp.Rows != output.Rows)
            throw new ArgumentException($"gateUp [{gateUp.Rows},{gateUp.Cols}] does not match output [{output.Rows},{output.Cols}]");
        var job = new RowOps.Job
        {
            Kind = RowOps.Op.SiluMul, Rows = output.Rows, Cols = output.Cols,
            A = (float*)gateUp.Data, C = (float*)output.Data,
        };
        _k.RowOps(_pool, ref job);
    }

    public void Add(Tensor a, Tensor b, Tensor output)
    {
        RequireF32(a, nameof(a));
        RequireF32(b, nameof(b));
        RequireF32(output, nameof(output));
        if (a.ElementCount != b.ElementCount || a.ElementCount != output.ElementCount)
            throw new ArgumentException($"Add of {a} and {b} into {output}: element counts differ");
        _k.Add((float*)a.Data, (float*)b.Data, (float*)output.Data, a.ElementCount);
    }

    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor output)
    {
        if (x.DType != output.DType) throw new ArgumentException("GatherRows needs matching dtypes");
        if (output.Rows != rows.Length || output.Cols != x.Cols)
            throw new ArgumentException($"output is [{output.Rows},{output.Cols}], expected [{rows.Length},{x.Cols}]");
        long rowBytes = (long)x.Cols * x.DType.Size();
        for (int i = 0; i < rows.Length; i++)
        {
            int r = rows[i];
            if ((uint)r >= (uint)x.Rows) throw new ArgumentOutOfRangeException(nameof(rows), $"row {r} of {x.Rows}");
            Buffer.MemoryCopy((byte*)x.Data + r * rowBytes, (byte*)output.Data + i * rowBytes, rowBytes, rowBytes);
        }
    }

    public KvCache AllocateKvCache(KvCacheSpec spec) => new CpuKvCache(spec);

    public void WriteKv(KvCache cache, int layer, Tensor k, Tensor v, ReadOnlySpan<int> slotMapping)
    {
        var c = AsCpuCache(cache);
        var spec = c.Spec;
        int width = spec.NumKvHeads * spec.HeadDim;
        RequireF32(k, nameof(k));
        RequireF32(v, nameof(v));
        if (k.Cols != width || v.Cols != width || k.Rows != v.Rows)
            throw new ArgumentException($"k [{k.Rows},{k.Cols}] / v [{v.Rows},{v.Cols}] must both be [tokens,{width}]");
        if (slotMapping.Length != k.Rows) throw new ArgumentException($"{slotMapping.Length} slots for {k.Rows} tokens");
        byte* kd = c.K(layer), vd = c.V(layer);
        long slots = (long)spec.NumBlocks * spec.BlockSize;
        int es = spec.DType.Size(), d = spec.HeadDim, bs = spec.BlockSize;
        bool bf16 = spec.DType == DType.BF16;
        ushort* row = stackalloc ushort[d];
        for (int t = 0; t < slotMapping.Length; t++)
        {
            int slot = slotMapping[t];
            if (slot < 0) continue;
            if (slot >= slots) throw new ArgumentOutOfRangeException(nameof(slotMapping), $"slot {slot} >= {slots}");
            int block = slot / bs, offset = slot % bs;
            float* ks = (float*)k.Data + (long)t * width, vs = (float*)v.Data + (long)t * width;
            for (int h = 0; h < spec.NumKvHeads; h++)
            {
                _k.FromF32(vs + (long)h * d, vd + c.Offset(block, h, offset) * es, spec.DType, d);
                // K is transposed inside the tile: element x of this token sits at [x][offset].
                long kAt = c.Offset(block, h, 0) + offset;
                float* kh = ks + (long)h * d;
                if (bf16)
                {
                    _k.FromF32(kh, row, DType.BF16, d); // vector rounding, then a strided scatter
                    for (int x = 0; x < d; x++) ((ushort*)kd)[kAt + (long)x * bs] = row[x];
                }
                else
                    for (int x = 0; x < d; x++) ((float*)kd)[kAt + (long)x * bs] = kh[x];
            }
        }
    }

    public void PagedAttention(Tensor q, KvCache cache, int layer, AttentionMetadata meta, int numHeads, float scale, Tensor output) =>
        _k.Attention(_pool, _attentionScratch, q, AsCpuCache(cache), layer, meta, numHeads, scale, output);

    public void CopyToHost(Tensor source, Span<float> destination)
    {
        RequireF32(source, nameof(source));
        if (destination.Length < source.ElementCount) throw new ArgumentException($"destination holds {destination.Length} of {source.ElementCount} floats");
        new ReadOnlySpan<float>((void*)source.Data, checked((int)source.ElementCount)).CopyTo(destination);
    }

    public void CopyFromHost(ReadOnlySpan<float> source, Tensor destination)
    {
        RequireF32(destination, nameof(destination));
        if (source.Length > destination.ElementCount) throw new ArgumentException($"{source.Length} floats do not fit {destination}");
        source.CopyTo(new Span<float>((void*)destination.Data, checked((int)destination.ElementCount)));
    }

    public void Synchronize()
    {
    }

    /// <summary>The logits are host memory already: sample them in place (<see cref="SamplingBatch"/>'s algorithm).</summary>
    public void Sample(Tensor logits, SamplingBatch batch)
    {
        RequireF32(logits, nameof(logits));
        _sampler.Sample(new Span<float>((void*)logits.Data, checked((int)logits.ElementCount)), logits.Cols, batch);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _pool.Dispose();
        _gemmScratch.Dispose();
        _attentionScratch.Dispose();
        _rope.Dispose();
    }

    private static CpuKvCache AsCpuCache(KvCache cache) =>
        cache as CpuKvCache ?? throw new ArgumentException("KV cache was not allocated by the CPU backend", nameof(cache));

    private static void RequireF32(Tensor t, string name)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{name} must be F32, got {t}", name);
        if (t.Data == 0 && t.ElementCount > 0) throw new ObjectDisposedException(name);
    }

    private static void RequireSameShape(Tensor a, Tensor b, string name)
    {
        if (a.Rows != b.Rows || a.Cols != b.Cols) throw new ArgumentException($"{name} is {b}, expected the shape of {a}", name);
    }

    private static void CheckNorm(Tensor x, Tensor weight, Tensor output)
    {
        RequireF32(x, nameof(x));
        RequireF32(weight, nameof(weight));
        RequireF32(output, nameof(output));
        if (weight.ElementCount != x.Cols) throw new ArgumentException($"norm weight has {weight.ElementCount} elements for {x.Cols} features");
        RequireSameShape(x, output, nameof(output));
    }
}
