using System.Runtime.CompilerServices;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>The int8 dot products as plain integer loops.</summary>
internal unsafe partial struct ScalarSimd
{
    public static float DotI8x64(sbyte* w, sbyte* x, float* c, bool g16, float acc)
    {
        int g = g16 ? 16 : 32;
        for (int s = 0; s < 64; s += g)
        {
            int sum = 0;
            for (int i = s; i < s + g; i++) sum += w[i] * x[i];
            acc += sum * c[s / g];
        }

        return acc;
    }

    public static float DotU4x64(byte* w, sbyte* x, float* c, float acc)
    {
        int lo = 0, hi = 0;
        for (int i = 0; i < 32; i++)
        {
            lo += (w[i] & 0xF) * x[i];
            hi += (w[i] >> 4) * x[32 + i];
        }

        return acc + lo * c[0] + hi * c[1];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadI8(sbyte* p) => *p;
}
