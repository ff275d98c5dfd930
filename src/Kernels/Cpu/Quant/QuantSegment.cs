namespace Loom.Kernels.Cpu.Quant;

/// <summary>Code formats of <see cref="QuantSegment"/>: one signed byte a weight, or two unsigned nibbles a byte.</summary>
internal enum QuantCodes
{
    I8,
    U4,
}

/// <summary>
/// Consecutive output rows of one GGUF type in the kernels' row format (see <see cref="QuantLinearWeight"/>):
/// per row, <see cref="RowBytes"/> of codes, then (separately) <see cref="GroupStride"/> float scales and,
/// for Q4_K, as many mins (Q4_0's min is 8·scale, so it stores none).
/// </summary>
internal sealed unsafe class QuantSegment : IDisposable
{
    public const int Chunk = 64;

    private QuantLayout _l;

    private QuantSegment(DType source, int rows, int k, int column)
    {
        _l.Source = source;
        _l.Rows = rows;
        _l.K = k;
        _l.Column = column;
        _l.Codes = source is DType.Q4_0 or DType.Q4_K ? QuantCodes.U4 : QuantCodes.I8;
        _l.Group = source == DType.Q6_K ? 16 : 32;
        _l.KPad = (k + Chunk - 1) / Chunk * Chunk;
        _l.RowBytes = _l.Codes == QuantCodes.U4 ? _l.KPad / 2 : _l.KPad;
        // Room for vector loads over groups and the 4-float scale reads of the last chunk.
        _l.GroupStride = (_l.KPad / _l.Group + 4 + 15) / 16 * 16;
        _l.CodeData = (byte*)NativeBuffer.Alloc((long)rows * _l.RowBytes);
        _l.ScaleData = (float*)NativeBuffer.Alloc((long)rows * _l.GroupStride * sizeof(float));
        if (source == DType.Q4_K) _l.MinData = (float*)NativeBuffer.Alloc((long)rows * _l.GroupStride * sizeof(float));
    }

    /// <summary>The segment's pointers and sizes, as an unmanaged value the kernels' job structs carry.</summary>
    public QuantLayout Layout => _l.CodeData != null ? _l : throw new ObjectDisposedException(nameof(QuantLinearWeight));

    public DType Source => _l.Source;
    public int Rows => _l.Rows;
    public int Column => _l.Column;

    public long ByteLength => (long)_l.Rows * (_l.RowBytes + _l.GroupStride * sizeof(float) * (_l.MinData != null ? 2 : 1));

    public static QuantSegment Create(WeightView[] parts, int k, int column, CpuThreadPool? pool)
    {
        int rows = parts.Sum(p => p.Shape[0]);
        var seg = new QuantSegment(parts[0].DType, rows, k, column);
        var src = new nint[rows];
        long rowBytes = parts[0].DType.ByteCount(k);
        int r = 0;
        foreach (var p in parts)
            for (int i = 0; i < p.Shape[0]; i++) src[r++] = p.Data + (nint)(i * rowBytes);
        fixed (nint* s = src)
        {
            var job = new ConvertJob { L = seg._l, Src = s, RowsPerItem = 64 };
            int items = (rows + job.RowsPerItem - 1) / job.RowsPerItem;
            if (pool is null)
                for (int i = 0; i < items; i++) ConvertItem(&job, i, 0);
            else
                pool.For(items, &ConvertItem, &job);
        }

        return seg;
    }

    private struct ConvertJob
    {
        public QuantLayout L;
        public nint* Src;
        public int RowsPerItem;
    }

    private static void ConvertItem(void* ctx, int item, int thread)
    {
        var j = (ConvertJob*)ctx;
        int r0 = item * j->RowsPerItem, r1 = Math.Min(j->L.Rows, r0 + j->RowsPerItem);
        for (int r = r0; r < r1; r++) ConvertRow(ref j->L, r, (byte*)j->Src[r]);
    }

    private static void ConvertRow(ref QuantLayout l, int row, byte* src)
    {
        byte* codes = l.CodesOf(row);
        float* scales = l.ScalesOf(row), mins = l.MinsOf(row);
        int k = l.K;
        switch (l.Source)
        {
            case DType.Q8_0:
                for (int b = 0; b < k / 32; b++, src += 34)
                {
                    scales[b] = GgmlBlocks.Half(*(ushort*)src);
                    Buffer.MemoryCopy(src + 2, codes + b * 32, 32, 32);
                }
                break;
            case DType.Q4_0:
                for (int b = 0; b < k / 32; b++, src += 18)
                {
                    scales[b] = GgmlBlocks.Half(*(ushort*)src);
                    for (int i = 0; i < 16; i++)
                    {
                        SetNibble(codes, b * 32 + i, src[2 + i] & 0xF);
                        SetNibble(codes, b * 32 + 16 + i, src[2 + i] >> 4);
                    }
                }
                break;
            case DType.Q4_K:
                for (int sb = 0; sb < k / 256; sb++, src += 144)
                {
                    float d = GgmlBlocks.Half(*(ushort*)src), dmin = GgmlBlocks.Half(*(ushort*)(src + 2));
                    for (int s = 0; s < 8; s++)
                    {
                        GgmlBlocks.ScaleMinK4(s, src + 4, out int sc, out int m);
                        scales[sb * 8 + s] = d * sc;
                        mins[sb * 8 + s] = dmin * m;
                    }

                    // ggml's own nibble order per 64 elements is this format's chunk layout.
                    Buffer.MemoryCopy(src + 16, codes + sb * 128, 128, 128);
                }
                break;
            case DType.Q6_K:
                for (int sb = 0; sb < k / 256; sb++, src += 210)
                {
                    float d = GgmlBlocks.Half(*(ushort*)(src + 208));
                    var sc = (sbyte*)(src + 192);
                    for (int s = 0; s < 16; s++) scales[sb * 16 + s] = d * sc[s];
                    var q = (sbyte*)codes + sb * 256;
                    for (int half = 0; half < 2; half++)
                    {
                        byte* ql = src + 64 * half, qh = src + 128 + 32 * half;
                        for (int li = 0; li < 32; li++)
                            for (int quarter = 0; quarter < 4; quarter++)
                                q[128 * half + 32 * quarter + li] = (sbyte)GgmlBlocks.Q6(ql, qh, li, quarter);
                    }
                }
                break;
            default:
                throw new NotSupportedException($"{l.Source} is not a quantized type");
        }
    }

    private static void SetNibble(byte* codes, int e, int v)
    {
        int chunk = e / Chunk, r = e % Chunk;
        byte* b = codes + chunk * 32 + (r & 31);
        *b = r < 32 ? (byte)((*b & 0xF0) | v) : (byte)((*b & 0x0F) | (v << 4));
    }

    public void Dispose()
    {
        NativeBuffer.Release(_l.CodeData);
        NativeBuffer.Release(_l.ScaleData);
        NativeBuffer.Release(_l.MinData);
        _l.CodeData = null;
        _l.ScaleData = null;
        _l.MinData = null;
    }
}

/// <summary>Where one segment's rows live and how they are laid out.</summary>
internal unsafe struct QuantLayout
{
    public DType Source;
    public QuantCodes Codes;
    public int Rows;
    public int K;
    public int KPad;

    /// <summary>First output column this segment writes.</summary>
    public int Column;

    /// <summary>Elements per scale: 32, or 16 for Q6_K.</summary>
    public int Group;

    public int RowBytes;
    public int GroupStride;
    public byte* CodeData;
    public float* ScaleData;

    /// <summary>Q4_K's mins; null for the other types (Q4_0's min is 8·scale, I8 has none).</summary>
    public float* MinData;

    public readonly byte* CodesOf(int row) => CodeData + (long)row * RowBytes;
    public readonly float* ScalesOf(int row) => ScaleData + (long)row * GroupStride;
    public readonly float* MinsOf(int row) => MinData == null ? null : MinData + (long)row * GroupStride;
}
