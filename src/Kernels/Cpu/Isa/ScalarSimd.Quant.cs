using System.Runtime.CompilerServices;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>The int8 dot products as plain integer loops.</summary>
internal unsafe partial struct ScalarSimd
{
    public static void DotI8Panel(sbyte* w, sbyte* x, int groups, int group, float* ws, float* xs, float* acc)
    {
        int* a = stackalloc int[32];
        for (int r = 0; r < 32; r++) acc[r] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += group)
        {
            for (int r = 0; r < 32; r++) a[r] = 0;
            for (int k = 0; k < group; k += 4, w += 128)
                for (int r = 0; r < 32; r++)
                    for (int j = 0; j < 4; j++) a[r] += w[4 * r + j] * x[k + j];
            for (int r = 0; r < 32; r++) acc[r] += a[r] * (ws[r] * xs[g]);
        }
    }

    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, float* acc)
    {
        int* a = stackalloc int[32];
        for (int r = 0; r < 32; r++) acc[r] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += 32)
        {
            for (int r = 0; r < 32; r++) a[r] = 0;
            for (int k = 0; k < 32; k += 8, w += 128)
                for (int r = 0; r < 32; r++)
                    for (int j = 0; j < 4; j++) a[r] += (w[4 * r + j] & 0xF) * x[k + j] + (w[4 * r + j] >> 4) * x[k + 4 + j];
            for (int r = 0; r < 32; r++) acc[r] += a[r] * (ws[r] * xs[g]);
        }
    }

    public static void DecodeI8Step(sbyte* q, float* s, float* dst) => PanelDecode.I8Step(q, s, dst);

    public static void DecodeU4Step(byte* q, float* s, float* m, float* dst) => PanelDecode.U4Step(q, s, m, dst);

    public static void WidenHalfScales(ushort* h, float* dst)
    {
        for (int r = 0; r < 32; r++) dst[r] = (float)BitConverter.UInt16BitsToHalf(h[r]);
    }

    public static void WidenScales(sbyte* sc, float* d, float* dst)
    {
        for (int r = 0; r < 32; r++) dst[r] = d[r] * sc[r];
    }
}
