namespace Loom.Kernels.Cpu;

/// <summary>
/// W[N, K] repacked once into K-major panels of 32 output columns (<c>[N/32][K][32]</c>, the N tail
/// zero-padded). Row-major [N,K] streams read 0.2-0.45 of DRAM bandwidth here (many short
/// interleaved streams defeat the prefetcher); one contiguous stream per panel reaches 0.7-0.9.
/// bf16 stays bf16 (half the bytes at the same FLOPs), interleaved per <see cref="Bf16Panel"/>.
/// f32 and f16 become f32 panels: .NET 10 has no 512-bit vcvtph2ps to widen f16 in the kernel.
/// </summary>
public sealed unsafe class PackedLinearWeight : LinearWeight
{
    public const int PanelWidth = 32;

    private byte* _data;

    private PackedLinearWeight(int n, int k, DType sourceDType, DType panelDType)
        : base(n, k, sourceDType)
    {
        PanelDType = panelDType;
        Panels = (n + PanelWidth - 1) / PanelWidth;
        PanelBytes = (long)k * PanelWidth * panelDType.Size();
        _data = (byte*)WeightArena.Alloc(Panels * PanelBytes);
    }

    /// <summary>Element type of the packed panels (BF16 or F32).</summary>
    public DType PanelDType { get; }

    public int Panels { get; }

    public long PanelBytes { get; }

    public override long ByteLength => Panels * PanelBytes;

    internal byte* Data => _data != null ? _data : throw new ObjectDisposedException(nameof(PackedLinearWeight));

    /// <summary>Stacks <paramref name="parts"/> along N and packs them; <paramref name="pool"/> parallelises the copy.</summary>
    public static PackedLinearWeight Pack(IReadOnlyList<WeightView> parts, CpuThreadPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("PrepareLinear needs at least one weight", nameof(parts));
        var first = parts[0];
        int k = Validate(first, first);
        long n = 0;
        foreach (var p in parts)
        {
            if (Validate(p, first) != k)
                throw new ArgumentException($"weight '{p.Name}' has K={p.Shape[^1]} but '{first.Name}' has K={k}; fused parts must share K", nameof(parts));
            n += p.Shape[0];
        }

        if (n > int.MaxValue) throw new ArgumentException($"fused N={n} is too large", nameof(parts));
        var panelType = first.DType == DType.BF16 ? DType.BF16 : DType.F32;
        var w = new PackedLinearWeight((int)n, k, first.DType, panelType);

        // Map every global output row to its source row once; panels then pack independently.
        var rowSrc = new nint[n];
        long row = 0;
        foreach (var p in parts)
        {
            long rowBytes = (long)k * p.DType.Size();
            for (int r = 0; r < p.Shape[0]; r++) rowSrc[row++] = p.Data + (nint)(r * rowBytes);
        }

        fixed (nint* rows = rowSrc)
        {
            var job = new PackJob
            {
                Dst = w._data, PanelBytes = w.PanelBytes, K = k, N = (int)n, Rows = rows,
                SourceType = first.DType, PanelType = panelType,
            };
            if (pool is null)
            {
                for (int i = 0; i < w.Panels; i++) PackPanel(&job, i, 0);
            }
            else
            {
                pool.For(w.Panels, &PackPanel, &job);
            }
        }

        return w;
    }

    private static int Validate(WeightView p, WeightView first)
    {
        if (p.Shape is null || p.Shape.Length != 2)
            throw new ArgumentException($"weight '{p.Name}' must be 2-D [N, K], got [{string.Join(",", p.Shape ?? [])}]");
        if (p.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"weight '{p.Name}' has unsupported dtype {p.DType}");
        if (p.DType != first.DType)
            throw new ArgumentException($"weight '{p.Name}' is {p.DType} but '{first.Name}' is {first.DType}; fused parts must share a dtype");
        if (p.Data == 0 && p.ElementCount > 0)
            throw new ArgumentException($"weight '{p.Name}' has no data");
        return p.Shape[1];
    }

    private struct PackJob
    {
        public byte* Dst;
        public long PanelBytes;
        public int K;
        public int N;
        public nint* Rows;
        public DType SourceType;
        public DType PanelType;
    }

    private static void PackPanel(void* ctx, int panel, int thread)
    {
        var job = (PackJob*)ctx;
        int k = job->K;
        int n0 = panel * PanelWidth;
        int cols = Math.Min(PanelWidth, job->N - n0);
        byte* dst = job->Dst + panel * job->PanelBytes;
        if (job->PanelType == DType.BF16)
        {
            var d = (ushort*)dst;
            for (int c = 0; c < cols; c++)
            {
                var src = (ushort*)job->Rows[n0 + c];
                // Interleave: column c<16 sits in the low half of 32-bit lane c, c>=16 in the high half of lane c-16.
                int slot = c < 16 ? 2 * c : 2 * (c - 16) + 1;
                for (int kk = 0; kk < k; kk++) d[kk * PanelWidth + slot] = src[kk];
            }
        }
        else
        {
            var d = (float*)dst;
            for (int c = 0; c < cols; c++)
            {
                byte* src = (byte*)job->Rows[n0 + c];
                if (job->SourceType == DType.F32)
                {
                    var s = (float*)src;
                    for (int kk = 0; kk < k; kk++) d[kk * PanelWidth + c] = s[kk];
                }
                else
                {
                    var s = (Half*)src;
                    for (int kk = 0; kk < k; kk++) d[kk * PanelWidth + c] = (float)s[kk];
                }
            }
        }
    }

    public override void Dispose()
    {
        var p = _data;
        _data = null;
        WeightArena.Release(p);
    }
}
