namespace Loom.Silo.Models;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014). Our own PRNG because System.Random's algorithm is not
/// promised to stay the same across .NET versions, and generated models must be byte-identical.
/// </summary>
public struct SplitMix64(ulong state)
{
    private ulong _state = state;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        return Mix(z);
    }

    /// <summary>Uniform in [0, 1) with 24 random bits: exact in float, no platform-dependent math.</summary>
    public float NextFloat() => (Next() >> 40) * (1.0f / 16777216f);

    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>FNV-1a over UTF-16 code units: a stable string hash (string.GetHashCode is randomised).</summary>
    public static ulong Hash(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char ch in s) { h ^= ch; h *= 0x100000001B3UL; }
        return h;
    }
}
