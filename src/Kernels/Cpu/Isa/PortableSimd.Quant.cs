using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>The int8 dot products with the cross-platform Vector128 API only: widen to int16, multiply, widen and sum per row.</summary>
internal unsafe partial struct PortableSimd
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc)
    {
        int* a = stackalloc int[32];
        for (int i = 0; i < 32; i++) acc[i] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += group)
        {
            for (int i = 0; i < 32; i++) a[i] = 0;
            for (int k = 0; k < group; k += 4, w += 128)
            {
                var xb = Vector128.Create(*(int*)(x + k)).AsSByte();
                for (int i = 0; i < 8; i++) Dot4Rows(Vector128.Load(w + 16 * i), xb, a + 4 * i);
            }

            Flush(a, ws, xs[g], acc);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, float* acc)
    {
        int* a = stackalloc int[32];
        var mask = Vector128.Create((byte)0x0F);
        for (int i = 0; i < 32; i++) acc[i] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += 32)
        {
            for (int i = 0; i < 32; i++) a[i] = 0;
            for (int k = 0; k < 32; k += 8, w += 128)
            {
                var xl = Vector128.Create(*(int*)(x + k)).AsSByte();
                var xh = Vector128.Create(*(int*)(x + k + 4)).AsSByte();
                for (int i = 0; i < 8; i++)
                {
                    var b = Vector128.Load(w + 16 * i);
                    Dot4Rows((b & mask).AsSByte(), xl, a + 4 * i);
                    Dot4Rows(Vector128.ShiftRightLogical(b, 4).AsSByte(), xh, a + 4 * i);
                }
            }

            Flush(a, ws, xs[g], acc);
        }
    }

    /// <summary>a[r] += Σ_{j&lt;4} w[4r + j]·x[j] for the 4 rows of 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot4Rows(Vector128<sbyte> w, Vector128<sbyte> x, int* a)
    {
        var lo = Vector128.WidenLower(w) * Vector128.WidenLower(x);
        var hi = Vector128.WidenUpper(w) * Vector128.WidenUpper(x);
        var sums = Vector128.Create(
            Vector128.Sum(Vector128.WidenLower(lo)), Vector128.Sum(Vector128.WidenUpper(lo)),
            Vector128.Sum(Vector128.WidenLower(hi)), Vector128.Sum(Vector128.WidenUpper(hi)));
        (Vector128.Load(a) + sums).Store(a);
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
}
