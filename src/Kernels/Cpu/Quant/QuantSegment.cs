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
            _ => QuantCodes.I8,
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

    private static void ConvertPanel(void* ctx, int panel, int thread)
    {
        var j = (ConvertJob*)ctx;
        ref var l = ref j->L;
        var codes = new sbyte[l.K];
        var scales = new float[l.Groups];
        var mins = new float[l.Groups];
        var sub = new sbyte[l.Groups];
        var subMin = new sbyte[l.Groups];
        for (int c = 0; c < PanelRows && panel * PanelRows + c < l.Rows; c++)
        {
            int row = panel * PanelRows + c;
            DecodeRow(l.Source, (byte*)j->Src[row], l.K, codes, scales, mins, sub, subMin);
            byte* p = l.CodeData + panel * l.PanelCodeBytes;
            fixed (sbyte* cs = codes)
            {
                if (l.Codes == QuantCodes.I8)
                {
                    for (int k = 0; k < l.K; k += 4) *(int*)(p + (k / 4) * 128 + c * 4) = *(int*)(cs + k);
                }
                else if (l.Codes == QuantCodes.U6)
                {
                    for (int k = 0; k < l.K; k += 16)
                    {
                        byte* b = p + (k / 16) * 384 + c * 4;
                        for (int i = 0; i < 4; i++)
                        {
                            int u0 = cs[k + i] + 32, u1 = cs[k + 4 + i] + 32, u2 = cs[k + 8 + i] + 32, u3 = cs[k + 12 + i] + 32;
                            b[i] = (byte)((u0 & 0xF) | (u1 & 0xF) << 4);
                            b[128 + i] = (byte)((u2 & 0xF) | (u3 & 0xF) << 4);
                            b[256 + i] = (byte)(u0 >> 4 | (u1 >> 4) << 2 | (u2 >> 4) << 4 | (u3 >> 4) << 6);
                        }
                    }
                }
                else
                {
                    for (int k = 0; k < l.K; k += 8)
                    {
                        byte* b = p + (k / 8) * 128 + c * 4;
                        for (int i = 0; i < 4; i++) b[i] = (byte)((byte)cs[k + i] | ((byte)cs[k + 4 + i] << 4));
                    }
                }
            }

            if (l.TwoLevel)
            {
                // DecodeRow left d (and dmin) per 256-block in scales/mins[0..Supers).
                for (int g = 0; g < l.Groups; g++)
                {
                    l.SubScalesOf(panel)[g * PanelRows + c] = sub[g];
                    if (l.SubMins != null) l.SubMinsOf(panel)[g * PanelRows + c] = subMin[g];
                }

                for (int sb = 0; sb < l.Supers; sb++)
                {
                    l.ScalesOf(panel)[sb * PanelRows + c] = scales[sb];
                    if (l.MinData != null) l.MinsOf(panel)[sb * PanelRows + c] = mins[sb];
                }

                continue;
            }

            for (int g = 0; g < l.Groups; g++)
                l.HalfScalesOf(panel)[g * PanelRows + c] = BitConverter.HalfToUInt16Bits((Half)scales[g]);
        }
    }

    /// <summary>
    /// One GGUF row as codes (I8: signed; U4: 0..15) and scales such that value = scale·code − min,
    /// exactly llama.cpp's dequantized value: for Q8_0/Q4_0 a scale per group; for the K-quants
    /// d (and dmin) per 256-block in scales/mins and the group's sc (and m) in sub/subMin, the
    /// group's scale being d·sc and its min dmin·m.
    /// </summary>
    private static void DecodeRow(DType type, byte* src, int k, sbyte[] codes, float[] scales, float[] mins, sbyte[] sub, sbyte[] subMin)
    {
        switch (type)
        {
            case DType.Q8_0:
                for (int b = 0; b < k / 32; b++, src += 34)
                {
                    scales[b] = GgmlBlocks.Half(*(ushort*)src);
                    for (int i = 0; i < 32; i++) codes[b * 32 + i] = ((sbyte*)src)[2 + i];
                }
                break;
            case DType.Q4_0:
                for (int b = 0; b < k / 32; b++, src += 18)
                {
                    scales[b] = GgmlBlocks.Half(*(ushort*)src);
                    for (int i = 0; i < 16; i++)
                    {
                        codes[b * 32 + i] = (sbyte)(src[2 + i] & 0xF);
                        codes[b * 32 + 16 + i] = (sbyte)(src[2 + i] >> 4);
                    }
                }
                break;
            case DType.Q4_K:
                for (int sb = 0; sb < k / 256; sb++, src += 144)
                {
                    float d = GgmlBlocks.Half(*(ushort*)src), dmin = GgmlBlocks.Half(*(ushort*)(src + 2));
                    scales[sb] = d;
                    mins[sb] = dmin;
                    for (int s = 0; s < 8; s++)
                    {
                        GgmlBlocks.ScaleMinK4(s, src + 4, out int sc, out int m);
                        sub[sb * 8 + s] = (sbyte)sc;
                        subMin[sb * 8 + s] = (sbyte)m;
                    }

                    byte* q = src + 16;
                    for (int j = 0; j < 4; j++, q += 32)
                    {
                        for (int i = 0; i < 32; i++)
                        {
                            codes[sb * 256 + j * 64 + i] = (sbyte)(q[i] & 0xF);
                            codes[sb * 256 + j * 64 + 32 + i] = (sbyte)(q[i] >> 4);
                        }
                    }
                }
                break;
            case DType.Q6_K:
                for (int sb = 0; sb < k / 256; sb++, src += 210)
                {
                    float d = GgmlBlocks.Half(*(ushort*)(src + 208));
                    var sc = (sbyte*)(src + 192);
                    scales[sb] = d;
                    for (int s = 0; s < 16; s++) sub[sb * 16 + s] = sc[s];
                    for (int half = 0; half < 2; half++)
                    {
                        byte* ql = src + 64 * half, qh = src + 128 + 32 * half;
                        for (int li = 0; li < 32; li++)
                            for (int quarter = 0; quarter < 4; quarter++)
                                codes[sb * 256 + 128 * half + 32 * quarter + li] = (sbyte)GgmlBlocks.Q6(ql, qh, li, quarter);
                    }
                }
                break;
            default:
                throw new NotSupportedException($"{type} is not a quantized type");
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
