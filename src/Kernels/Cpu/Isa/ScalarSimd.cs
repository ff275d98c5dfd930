using System.Runtime.CompilerServices;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>
/// No accelerated vectors (DOTNET_EnableHWIntrinsic=0, or a CPU .NET has no vector support for):
/// a "vector" of one float. Multiply and add stay separate, since a scalar FMA would be a software
/// call without the instruction. Correct everywhere; speed is whatever scalar code gives.
/// </summary>
internal unsafe partial struct ScalarSimd : ISimd<float>
{
    public static int Lanes => 1;

    public static int MaxRows => 4;

    public static int QuantDecodeMinRows => 16;

    public static float Zero => 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Splat(float x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(float* p) => *p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float v, float* p) => *p = v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float a, float b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sub(float a, float b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Mul(float a, float b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Div(float a, float b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MulAdd(float a, float b, float c) => a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(float a, float b) => MathF.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(float v) => v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(float v) => v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x) => MathF.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBf16Pair(byte* p, out float lo, out float hi)
    {
        uint v = *(uint*)p;
        lo = BitConverter.UInt32BitsToSingle(v << 16);
        hi = BitConverter.UInt32BitsToSingle(v & 0xFFFF0000u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadBf16(ushort* p) => BitConverter.UInt32BitsToSingle((uint)*p << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreBf16(float v, ushort* p)
    {
        uint u = BitConverter.SingleToUInt32Bits(v);
        *p = (ushort)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
    }

    public static void Prefetch(void* p)
    {
    }

    public static int Transpose12(float* src, int k, float* dst) => 0;
}
