namespace Loom.Kernels.Cpu.Isa;

/// <summary>Scalar widening of quantized panel steps, for the implementations without a byte shuffle here.</summary>
internal static unsafe class PanelDecode
{
    public static void I8Step(sbyte* q, float* s, float* dst)
    {
        for (int r = 0; r < 32; r++)
            for (int j = 0; j < 4; j++) dst[j * 32 + r] = q[4 * r + j] * s[r];
    }

    public static void U4Step(byte* q, float* s, float* m, float* dst)
    {
        for (int r = 0; r < 32; r++)
        {
            for (int j = 0; j < 4; j++)
            {
                dst[j * 32 + r] = (q[4 * r + j] & 0xF) * s[r] - m[r];
                dst[(j + 4) * 32 + r] = (q[4 * r + j] >> 4) * s[r] - m[r];
            }
        }
    }
}
