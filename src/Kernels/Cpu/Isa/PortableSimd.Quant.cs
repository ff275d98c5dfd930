using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>The int8 dot products with the cross-platform Vector128 API only: widen to int16, multiply, widen and sum per row.</summary>
internal unsafe partial struct PortableSimd
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc)
    {
        var v = stackalloc Vector128<int>[32];
        int* a = stackalloc int[32];
        for (int i = 0; i < 32; i++) acc[i] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += group, w += 32 * group)
        {
            GroupI8(w, x, group, v, a);
            Flush(a, ws, xs[g], acc);
        }
    }

    /// <summary>Q6_K with integer sub-scales (see <see cref="ISimd{V}.DotQ6KPanel"/>): each group widened to signed bytes (<see cref="PanelDecode.U6Group"/>), then the I8 group sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ6KPanel(byte* w, sbyte* x, int supers, sbyte* sc, float* d, float* xd, int* qsum, float* acc)
    {
        var v = stackalloc Vector128<int>[32];
        var a = stackalloc Vector128<int>[8];
        var s = stackalloc Vector128<int>[8];
        var codes = stackalloc sbyte[512];
        for (int i = 0; i < 32; i++) acc[i] = 0f;
        for (int b = 0; b < supers; b++, d += 32)
        {
            for (int i = 0; i < 8; i++) s[i] = Vector128<int>.Zero;
            for (int g = 0; g < 16; g++, sc += 32, x += 16, w += 384)
            {
                PanelDecode.U6Group(w, codes);
                GroupI8(codes, x, 16, v, (int*)a);
                PanelDecode.ScaleGroup128(a, sc, s);
            }

            PanelDecode.FlushBlock128(s, d, xd[16 * b], acc);
        }
    }

    /// <summary>a[r] = one group's exact int32 sum for each of the 32 rows of an I8 panel (32·group bytes from w).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupI8(sbyte* w, sbyte* x, int group, Vector128<int>* v, int* a)
    {
        for (int i = 0; i < 32; i++) v[i] = Vector128<int>.Zero;
        for (int k = 0; k < group; k += 4, w += 128)
        {
            var xb = Vector128.Create(*(int*)(x + k)).AsSByte();
            var xl = Vector128.WidenLower(xb);
            var xu = Vector128.WidenUpper(xb);
            for (int i = 0; i < 8; i++) Dot4Rows(Vector128.Load(w + 16 * i), xl, xu, v + 4 * i);
        }

        // One horizontal sum a row per group, not per step.
        for (int r = 0; r < 32; r++) a[r] = Vector128.Sum(v[r]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, int* qsum, float* acc)
    {
        var v = stackalloc Vector128<int>[32];
        int* a = stackalloc int[32];
        var mask = Vector128.Create((byte)0x0F);
        for (int i = 0; i < 32; i++) acc[i] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += 32, w += 512)
        {
            GroupU4(w, x, mask, v, a);
            for (int r = 0; r < 32; r++) a[r] -= 8 * qsum[g];
            Flush(a, ws, xs[g], acc);
        }
    }

    /// <summary>Q4_K with integer sub-scales (see <see cref="ISimd{V}.DotQ4KPanel"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotQ4KPanel(byte* w, sbyte* x, int supers, sbyte* sc, sbyte* m, float* d, float* dmin, float* xd, int* qsum, float* acc)
    {
        var v = stackalloc Vector128<int>[32];
        var a = stackalloc Vector128<int>[8];
        var s = stackalloc Vector128<int>[8];
        var mask = Vector128.Create((byte)0x0F);
        for (int i = 0; i < 32; i++) acc[i] = 0f;
        for (int b = 0; b < supers; b++, d += 32, dmin += 32, m += 256)
        {
            for (int i = 0; i < 8; i++) s[i] = Vector128<int>.Zero;
            for (int g = 0; g < 8; g++, sc += 32, x += 32, w += 512)
            {
                GroupU4(w, x, mask, v, (int*)a);
                PanelDecode.ScaleGroup128(a, sc, s);
            }

            PanelDecode.FlushBlock128(s, d, xd[8 * b], acc);
            PanelDecode.FlushMins128(m, qsum + 8 * b, dmin, xd[8 * b], acc);
        }
    }

    /// <summary>a[r] = one 32-k group's exact int32 sum for each of the 32 rows of a U4 panel (512 bytes from w).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupU4(byte* w, sbyte* x, Vector128<byte> mask, Vector128<int>* v, int* a)
    {
        for (int i = 0; i < 32; i++) v[i] = Vector128<int>.Zero;
        for (int k = 0; k < 32; k += 8, w += 128)
        {
            var xl = Vector128.Create(*(int*)(x + k)).AsSByte();
            var xh = Vector128.Create(*(int*)(x + k + 4)).AsSByte();
            var xll = Vector128.WidenLower(xl);
            var xlu = Vector128.WidenUpper(xl);
            var xhl = Vector128.WidenLower(xh);
            var xhu = Vector128.WidenUpper(xh);
            for (int i = 0; i < 8; i++)
            {
                var b = Vector128.Load(w + 16 * i);
                Dot4Rows((b & mask).AsSByte(), xll, xlu, v + 4 * i);
                Dot4Rows(Vector128.ShiftRightLogical(b, 4).AsSByte(), xhl, xhu, v + 4 * i);
            }
        }

        for (int r = 0; r < 32; r++) a[r] = Vector128.Sum(v[r]);
    }

    /// <summary>v[r] += the 4 products of row r (4 rows in 16 bytes), lane j holding k = j; x comes widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot4Rows(Vector128<sbyte> w, Vector128<short> xl, Vector128<short> xu, Vector128<int>* v)
    {
        var lo = Vector128.WidenLower(w) * xl;
        var hi = Vector128.WidenUpper(w) * xu;
        v[0] += Vector128.WidenLower(lo);
        v[1] += Vector128.WidenUpper(lo);
        v[2] += Vector128.WidenLower(hi);
        v[3] += Vector128.WidenUpper(hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush(int* a, float* ws, float xs, float* acc)
    {
        var xg = Vector128.Create(xs);
        for (int i = 0; i < 32; i += 4)
            Vector128.MultiplyAddEstimate(Vector128.ConvertToSingle(Vector128.Load(a + i)), Vector128.Load(ws + i) * xg, Vector128.Load(acc + i)).Store(acc + i);
    }

    public static void DecodeI8Step(sbyte* q, float* s, float* dst) => PanelDecode.I8Step(q, s, dst);

    public static void DecodeU4Step(byte* q, float* s, float* m, float* dst) => PanelDecode.U4Step(q, s, m, dst);

    public static void WidenScales(sbyte* sc, float* d, float* dst) => PanelDecode.WidenScales128(sc, d, dst);

    public static void WidenHalfScales(ushort* h, float* dst) => PanelDecode.WidenHalfScales128(h, dst);
}
