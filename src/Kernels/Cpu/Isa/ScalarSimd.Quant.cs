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

    public static void DotU4Panel(byte* w, sbyte* x, int groups, float* ws, float* xs, int* qsum, float* acc)
    {
        int* a = stackalloc int[32];
        for (int r = 0; r < 32; r++) acc[r] = 0f;
        for (int g = 0; g < groups; g++, ws += 32, x += 32)
        {
            for (int r = 0; r < 32; r++) a[r] = 0;
            for (int k = 0; k < 32; k += 8, w += 128)
                for (int r = 0; r < 32; r++)
                    for (int j = 0; j < 4; j++) a[r] += (w[4 * r + j] & 0xF) * x[k + j] + (w[4 * r + j] >> 4) * x[k + 4 + j];
            for (int r = 0; r < 32; r++) acc[r] += (a[r] - 8 * qsum[g]) * (ws[r] * xs[g]);
        }
    }

    public static void DotQ4KPanel(byte* w, sbyte* x, int supers, sbyte* sc, sbyte* m, float* d, float* dmin, float* xd, int* qsum, float* acc)
    {
        int* s = stackalloc int[32];
        int* n = stackalloc int[32];
        for (int r = 0; r < 32; r++) acc[r] = 0f;
        for (int b = 0; b < supers; b++, d += 32, dmin += 32)
        {
            for (int r = 0; r < 32; r++) s[r] = n[r] = 0;
            for (int g = 0; g < 8; g++, sc += 32, m += 32, x += 32)
            {
                for (int r = 0; r < 32; r++)
                {
                    int a = 0;
                    for (int k = 0; k < 32; k += 8)
                    {
                        byte* q = w + (k / 8) * 128 + 4 * r;
                        for (int j = 0; j < 4; j++) a += (q[j] & 0xF) * x[k + j] + (q[j] >> 4) * x[k + 4 + j];
                    }

                    s[r] += a * sc[r];
                    n[r] += m[r] * qsum[8 * b + g];
                }

                w += 512;
            }

            for (int r = 0; r < 32; r++) acc[r] += s[r] * (d[r] * xd[8 * b]) - n[r] * (dmin[r] * xd[8 * b]);
        }
    }

    public static void DotQ6KPanel(byte* w, sbyte* x, int supers, sbyte* sc, float* d, float* xd, int* qsum, float* acc)
    {
        int* s = stackalloc int[32];
        for (int r = 0; r < 32; r++) acc[r] = 0f;
        for (int b = 0; b < supers; b++, d += 32)
        {
            for (int r = 0; r < 32; r++) s[r] = 0;
            for (int g = 0; g < 16; g++, sc += 32, x += 16, w += 384)
            {
                for (int r = 0; r < 32; r++)
                {
                    int a = 0;
                    for (int j = 0; j < 4; j++)
                    {
                        int h = w[256 + 4 * r + j];
                        a += ((w[4 * r + j] & 0xF) | (h & 3) << 4) * x[j] + ((w[4 * r + j] >> 4) | (h >> 2 & 3) << 4) * x[4 + j]
                            + ((w[128 + 4 * r + j] & 0xF) | (h >> 4 & 3) << 4) * x[8 + j] + ((w[128 + 4 * r + j] >> 4) | (h >> 6) << 4) * x[12 + j];
                    }

                    s[r] += (a - 32 * qsum[16 * b + g]) * sc[r];
                }
            }

            for (int r = 0; r < 32; r++) acc[r] += s[r] * (d[r] * xd[16 * b]);
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
