using Loom.Silo.Models;

namespace Loom.Silo.Engine;

/// <summary>
/// Counter-based randomness: the draw for output token <c>k</c> of a sequence is a pure function of
/// (seed, k). Nothing is carried between draws, so a sequence's tokens never depend on which other
/// sequences share the batch or in which order they are sampled, and a sequence resumed elsewhere at
/// output index k continues with exactly the draws it would have made.
/// </summary>
public static class CounterRng
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>
    /// 64 random bits for (seed, counter): Mix(Mix(seed) + (counter + 1)·γ), SplitMix64's finaliser. For a fixed seed the
    /// map counter → bits is a bijection (γ is odd), so a stream never repeats within 2^64 draws.
    /// </summary>
    public static ulong Bits(ulong seed, ulong counter) => SplitMix64.Mix(SplitMix64.Mix(seed) + (counter + 1) * Golden);

    /// <summary>A uniform double in [0, 1) with 53 random bits for (seed, counter).</summary>
    public static double Uniform(ulong seed, ulong counter) => (Bits(seed, counter) >> 11) * (1.0 / (1UL << 53));

    /// <summary>A fresh seed from the OS's cryptographic generator, for requests that do not set one.</summary>
    public static ulong NewSeed()
    {
        Span<byte> b = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(b);
        return BitConverter.ToUInt64(b);
    }
}
