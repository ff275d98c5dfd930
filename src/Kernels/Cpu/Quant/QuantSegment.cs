using System.Runtime.CompilerServices;

namespace Loom.Kernels.Cpu.Quant;

/// <summary>Code formats of <see cref="QuantSegment"/>: one signed byte a weight, two unsigned nibbles a byte, or Q6_K's 6 bits.</summary>
internal enum QuantCodes
{
    I8,
    U4,
    U6,
}

/// <summary>
/// Consecutive output rows of one GGUF type, converted exactly at load into panels of 32 rows
/// (rows padded with zeros) in which each row's codes come 4 k at a time:
/// <list type="bullet">
/// <item>I8: per 4 k, 128 bytes = 32 rows × 4 signed codes (row r's k..k+3 at byte 4r).</item>
/// <item>U4: per 8 k, 128 bytes = 32 rows × 4 bytes; byte j of row r holds k+j in its low nibble and k+4+j in its high one.</item>
/// <item>U6 (Q6_K, codes 0..63 = value/sc/d + 32): per 16 k, 384 bytes: the low 4 bits as two U4 steps
/// (k..k+7, k+8..k+15), then 128 bytes of high 2 bits, byte j of row r holding those of k+j, k+4+j,
/// k+8+j and k+12+j in bits 0-1, 2-3, 4-5 and 6-7. 0.75 bytes a weight, as the file's.</item>
/// </list>
/// One 64-byte load then feeds 16 rows of an int8 dot product against 4 (or 8) broadcast
/// activations, with no horizontal sums (see <see cref="Isa.ISimd{V}.DotI8Panel"/>). Scales (and Q4_K's
/// mins) are laid out [panel][group][32 rows]: fp16 for Q8_0/Q4_0, a byte times a float per 256-block
/// and row for the K-quants (see <see cref="QuantLayout"/>). The int8 kernels widen Q8_0's and Q4_0's
/// per panel and apply the K-quants' bytes as integers; the decoded path widens all of them to fp32.
/// </summary>
internal sealed unsafe class QuantSegment : IDisposable
{
    public const int PanelRows = 32;

    private QuantLayout _l;

    private QuantSegment(DType source, int rows, int k, int column)
    {
        _l.Source = source;
        _l.Rows = rows;
        _l.K = k;
        _l.Column = column;
        _l.Codes = source switch
        {
            DType.Q4_0 or DType.Q4_K => QuantCodes.U4,
            DType.Q6_K => QuantCodes.U6,
            _ => QuantCodes.I8, // Q8_0, and Q5_0 widened to int8
        };
        _l.Group = source == DType.Q6_K ? 16 : 32;
        _l.Panels = (rows + PanelRows - 1) / PanelRows;
        _l.Groups = k / _l.Group;
        _l.PanelCodeBytes = _l.Codes switch
        {
            QuantCodes.U4 => (long)k * 16,
            QuantCodes.U6 => (long)k * 24,
            _ => (long)k * 32,
        };
        _l.CodeData = (byte*)WeightArena.Alloc(_l.Panels * _l.PanelCodeBytes);
        if (source is DType.Q4_K or DType.Q6_K)
        {
            // llama.cpp's two levels: a signed byte per group and per row (sc, and Q4_K's m), a float
            // per 256-block and row (d, dmin). Floats per group would cost Q4_K a third more bytes than the file.
            _l.Supers = k / 256;
            _l.SubScales = (sbyte*)WeightArena.Alloc((long)_l.Panels * _l.Groups * PanelRows);
            _l.ScaleData = (float*)WeightArena.Alloc((long)_l.Panels * _l.Supers * PanelRows * sizeof(float));
            if (source == DType.Q4_K)
            {
                _l.SubMins = (sbyte*)WeightArena.Alloc((long)_l.Panels * _l.Groups * PanelRows);
                _l.MinData = (float*)WeightArena.Alloc((long)_l.Panels * _l.Supers * PanelRows * sizeof(float));
            }
        }
        else
        {
            // Q8_0's and Q4_0's d is an fp16 in the file: kept as one, it costs what the file does.
            _l.HalfScales = (ushort*)WeightArena.Alloc((long)_l.Panels * _l.Groups * PanelRows * sizeof(ushort));
        }
    }

    /// <summary>The segment's pointers and sizes, as an unmanaged value the kernels' job structs carry.</summary>
    public QuantLayout Layout => _l.CodeData != null ? _l : throw new ObjectDisposedException(nameof(QuantLinearWeight));

    public DType Source => _l.Source;
    public int Rows => _l.Rows;
    public int Column => _l.Column;

    public long ByteLength => _l.Panels * (_l.PanelCodeBytes + (_l.TwoLevel
        ? ((long)_l.Groups * PanelRows + (long)_l.Supers * PanelRows * sizeof(float)) * (_l.MinData != null ? 2 : 1)
        : (long)_l.Groups * PanelRows * sizeof(ushort)));

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
            var job = new ConvertJob { L = seg._l, Src = s };
            if (pool is null)
                for (int i = 0; i < seg._l.Panels; i++) ConvertPanel(&job, i, 0);
            else
                pool.For(seg._l.Panels, &ConvertPanel, &job);
        }

        return seg;
    }

    private struct ConvertJob
    {
        public QuantLayout L;
        public nint* Src;
    }

    /// <summary>
    /// Transcodes the panel's rows straight from the file's blocks, 4 codes (one 32-bit word) at a
    /// time: nibbles and 2-bit pairs only move between bit positions, so no value is decoded. A
    /// byte-at-a-time decode through an int8 row was ~55% of loading a Q4_K_M file.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvertPanel(void* ctx, int panel, int thread)
    {
        var j = (ConvertJob*)ctx;
        ref var l = ref j->L;
        byte* codes = l.CodesOf(panel);
        for (int c = 0; c < PanelRows && panel * PanelRows + c < l.Rows; c++)
        {
            byte* src = (byte*)j->Src[panel * PanelRows + c];
            byte* dst = codes + c * 4;
            switch (l.Source)
            {
                case DType.Q8_0:
                    ConvertQ8_0(src, l.K, dst, l.HalfScalesOf(panel) + c);
                    break;
                case DType.Q4_0:
                    ConvertQ4_0(src, l.K, dst, l.HalfScalesOf(panel) + c);
                    break;
                case DType.Q5_0:
                    ConvertQ5_0(src, l.K, dst, l.HalfScalesOf(panel) + c);
                    break;
                case DType.Q4_K:
                    ConvertQ4K(src, l.Supers, dst, l.SubScalesOf(panel) + c, l.SubMinsOf(panel) + c, l.ScalesOf(panel) + c, l.MinsOf(panel) + c);
                    break;
                case DType.Q6_K:
                    ConvertQ6K(src, l.Supers, dst, l.SubScalesOf(panel) + c, l.ScalesOf(panel) + c);
                    break;
                default:
                    throw new NotSupportedException($"{l.Source} is not a quantized type");
            }
        }
    }

    private const uint Low4 = 0x0F0F0F0F;

    /// <summary>
    /// U4 words for 8 consecutive elements held as the low (or, with <paramref name="high"/>, high)
    /// nibbles of bytes q[0..8): byte t = element t | element 4+t &lt;&lt; 4.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint U4Word(byte* q, bool high)
    {
        uint a = *(uint*)q, b = *(uint*)(q + 4);
        return high ? ((a >> 4) & Low4) | (b & ~Low4) : (a & Low4) | ((b & Low4) << 4);
    }

    // I8 step (4 k) s of a row sits at s·128; Q8_0 blocks are 32 codes after an fp16 d.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvertQ8_0(byte* src, int k, byte* dst, ushort* scales)
    {
        for (int b = 0; b < k / 32; b++, src += 34, dst += 8 * 128)
        {
            scales[b * PanelRows] = *(ushort*)src;
            for (int i = 0; i < 8; i++) *(uint*)(dst + i * 128) = *(uint*)(src + 2 + 4 * i);
        }
    }

    /// <summary>
    /// Q5_0 becomes I8 codes q − 16 (exactly, −16..15) under the file's fp16 d, so it runs Q8_0's
    /// kernels with ggml's Q8_0 activations, as ggml's vec_dot_q5_0_q8_0 does: 1.0625 bytes a weight
    /// against the file's 0.6875 (the 5th bit would need kernels of its own).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvertQ5_0(byte* src, int k, byte* dst, ushort* scales)
    {
        for (int b = 0; b < k / 32; b++, src += 22, dst += 8 * 128)
        {
            scales[b * PanelRows] = *(ushort*)src;
            uint qh = *(uint*)(src + 2);
            for (int i = 0; i < 8; i++)
            {
                // Elements 4i..4i+3: nibbles of bytes (4i..4i+3) mod 16, low for the first half, high for the second.
                uint w = *(uint*)(src + 6 + 4 * (i & 3));
                uint nib = i < 4 ? w & Low4 : (w >> 4) & Low4;
                uint bits = qh >> (4 * i);
                uint hi = (bits & 1) << 4 | (bits & 2) << 11 | (bits & 4) << 18 | (bits & 8) << 25;
                // Subtracting 16 from each byte: (v | hi) − 16 lies in −16..15, so xor with 0x10 and
                // sign-extend bit 4 (v ^ 0x10 flips bit 4; values ≥ 16 become 0..15, < 16 become 16..31 → −16..−1).
                uint v = (nib | hi) ^ 0x10101010;
                uint neg = (v & 0x10101010) * 0xE; // bit 4 set: fill bits 5..7 (0x10·0xE = 0xE0)
                *(uint*)(dst + i * 128) = v | neg;
            }
        }
    }

    // U4 step (8 k) s sits at s·128; a Q4_0 block holds elements 0..15 in the low nibbles of its 16 bytes, 16..31 in the high.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvertQ4_0(byte* src, int k, byte* dst, ushort* scales)
    {
        for (int b = 0; b < k / 32; b++, src += 18, dst += 4 * 128)
        {
            scales[b * PanelRows] = *(ushort*)src;
            byte* q = src + 2;
            *(uint*)dst = U4Word(q, false);
            *(uint*)(dst + 128) = U4Word(q + 8, false);
            *(uint*)(dst + 256) = U4Word(q, true);
            *(uint*)(dst + 384) = U4Word(q + 8, true);
        }
    }

    // A Q4_K super-block: fp16 d, dmin, 12 bytes of packed 6-bit sc/m, then per 64 elements 32 bytes (low nibbles, then high).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvertQ4K(byte* src, int supers, byte* dst, sbyte* sub, sbyte* subMin, float* d, float* dmin)
    {
        for (int sb = 0; sb < supers; sb++, src += 144, dst += 32 * 128)
        {
            d[sb * PanelRows] = GgmlBlocks.Half(*(ushort*)src);
            dmin[sb * PanelRows] = GgmlBlocks.Half(*(ushort*)(src + 2));
            for (int g = 0; g < 8; g++)
            {
                GgmlBlocks.ScaleMinK4(g, src + 4, out int sc, out int m);
                sub[(sb * 8 + g) * PanelRows] = (sbyte)sc;
                subMin[(sb * 8 + g) * PanelRows] = (sbyte)m;
            }

            for (int chunk = 0; chunk < 4; chunk++)
            {
                byte* q = src + 16 + 32 * chunk;
                byte* o = dst + chunk * 8 * 128;
                for (int i = 0; i < 4; i++)
                {
                    *(uint*)(o + i * 128) = U4Word(q + 8 * i, false);
                    *(uint*)(o + (4 + i) * 128) = U4Word(q + 8 * i, true);
                }
            }
        }
    }

    /// <summary>
    /// A Q6_K super-block (ql[128], qh[64], int8 sc[16], fp16 d) into U6 steps of 16 k (384 bytes:
    /// two U4 steps of low nibbles, then the 2-bit pairs of k+i, k+4+i, k+8+i, k+12+i in byte i).
    /// Element l + 32·quarter of a 128-half has its low nibble in ql[l + 32·(quarter &amp; 1)] (high
    /// nibble for quarters 2-3) and its top bits at 2·quarter of qh[l]; its code keeps the +32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ConvertQ6K(byte* src, int supers, byte* dst, sbyte* sub, float* d)
    {
        for (int sb = 0; sb < supers; sb++, src += 210)
        {
            d[sb * PanelRows] = GgmlBlocks.Half(*(ushort*)(src + 208));
            for (int g = 0; g < 16; g++) sub[(sb * 16 + g) * PanelRows] = ((sbyte*)(src + 192))[g];
            for (int half = 0; half < 2; half++)
            {
                byte* ql = src + 64 * half, qh = src + 128 + 32 * half;
                for (int quarter = 0; quarter < 4; quarter++)
                {
                    byte* lo = ql + 32 * (quarter & 1);
                    bool high = quarter >= 2;
                    int shift = 2 * quarter;
                    for (int l0 = 0; l0 < 32; l0 += 16)
                    {
                        byte* o = dst + (long)((sb * 256 + half * 128 + quarter * 32 + l0) / 16) * 384;
                        *(uint*)o = U4Word(lo + l0, high);
                        *(uint*)(o + 128) = U4Word(lo + l0 + 8, high);
                        uint h0 = (*(uint*)(qh + l0) >> shift) & 0x03030303, h1 = (*(uint*)(qh + l0 + 4) >> shift) & 0x03030303;
                        uint h2 = (*(uint*)(qh + l0 + 8) >> shift) & 0x03030303, h3 = (*(uint*)(qh + l0 + 12) >> shift) & 0x03030303;
                        *(uint*)(o + 256) = h0 | h1 << 2 | h2 << 4 | h3 << 6;
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        WeightArena.Release(_l.CodeData);
        WeightArena.Release(_l.ScaleData);
        WeightArena.Release(_l.MinData);
        WeightArena.Release(_l.SubScales);
        WeightArena.Release(_l.SubMins);
        WeightArena.Release(_l.HalfScales);
        _l.CodeData = null;
        _l.ScaleData = null;
        _l.MinData = null;
        _l.SubScales = null;
        _l.SubMins = null;
        _l.HalfScales = null;
    }
}

/// <summary>Where one segment's panels live and how they are laid out.</summary>
internal unsafe struct QuantLayout
{
    public DType Source;
    public QuantCodes Codes;
    public int Rows;
    public int K;

    /// <summary>First output column this segment writes.</summary>
    public int Column;

    /// <summary>Elements per scale: 32, or 16 for Q6_K.</summary>
    public int Group;

    public int Groups;
    public int Panels;
    public long PanelCodeBytes;
    public byte* CodeData;

    /// <summary>Q8_0 and Q4_0: the file's fp16 d per group and row, [panel][group][32 rows].</summary>
    public ushort* HalfScales;

    /// <summary>
    /// K-quants: sc (and Q4_K's m) as signed bytes [panel][group][32 rows], and d (and dmin) as floats
    /// per 256-block, [panel][block][32 rows]; a group's scale is d·sc, its min dmin·m. Null for Q8_0
    /// and Q4_0 (whose min is 8·scale, or none).
    /// </summary>
    public sbyte* SubScales;

    public sbyte* SubMins;
    public float* ScaleData;
    public float* MinData;

    /// <summary>256-blocks per row (K-quants).</summary>
    public int Supers;

    public readonly bool TwoLevel => SubScales != null;

    public readonly byte* CodesOf(int panel) => CodeData + panel * PanelCodeBytes;
    public readonly ushort* HalfScalesOf(int panel) => HalfScales + (long)panel * Groups * QuantSegment.PanelRows;
    public readonly sbyte* SubScalesOf(int panel) => SubScales + (long)panel * Groups * QuantSegment.PanelRows;
    public readonly sbyte* SubMinsOf(int panel) => SubMins == null ? null : SubMins + (long)panel * Groups * QuantSegment.PanelRows;
    public readonly float* ScalesOf(int panel) => ScaleData + (long)panel * Supers * QuantSegment.PanelRows;
    public readonly float* MinsOf(int panel) => MinData == null ? null : MinData + (long)panel * Supers * QuantSegment.PanelRows;
}
