using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu.Isa;

/// <summary>The CPU kernel implementations, best first.</summary>
public enum CpuIsa
{
    /// <summary>AVX-512F, 512-bit vectors.</summary>
    Avx512,

    /// <summary>AVX2 + FMA, 256-bit vectors.</summary>
    Avx2,

    /// <summary>ARM64 Advanced SIMD, 128-bit vectors.</summary>
    Neon,

    /// <summary>The cross-platform Vector128 API, whatever the CPU.</summary>
    Portable,

    /// <summary>Plain scalar code: no hardware vectors at all.</summary>
    Scalar,
}

/// <summary>A forced <c>engine.cpu_isa</c> this CPU (or this runtime's settings) cannot run.</summary>
public sealed class CpuIsaUnavailableException(string message) : Exception(message);

/// <summary>
/// Chooses the kernel implementation once, when a backend is created, as llama.cpp does at load:
/// the best the CPU and the runtime allow, or the one <c>engine.cpu_isa</c> forces. Every
/// decision carries its reason, because the runtime ignores unknown DOTNET_Enable* knobs silently
/// and the only trustworthy record is what the process itself saw.
/// </summary>
public static class CpuIsaSelector
{
    /// <summary>The setting's accepted values.</summary>
    public const string Settings = "auto, avx512, avx2, neon or portable";

    public static CpuIsa Best() => Describe().Isa;

    /// <summary>The best implementation and why the better ones were passed over.</summary>
    public static (CpuIsa Isa, string Reason) Describe()
    {
        if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated) return (CpuIsa.Avx512, "avx512f");
        string no512 = Avx512F.IsSupported ? "avx512f present, 512-bit vectors not accelerated" : "no avx512f";
        if (Avx2.IsSupported && Fma.IsSupported) return (CpuIsa.Avx2, no512);
        if (AdvSimd.Arm64.IsSupported) return (CpuIsa.Neon, "arm64 advsimd");
        if (Vector128.IsHardwareAccelerated)
            return (CpuIsa.Portable, X86Base.IsSupported ? $"{no512}, no avx2+fma" : "128-bit vectors, no known vector ISA");
        return (CpuIsa.Scalar, "no hardware vectors");
    }

    /// <summary>Whether this process can run <paramref name="isa"/>, and if not, why.</summary>
    public static bool IsSupported(CpuIsa isa, out string why)
    {
        (bool ok, why) = isa switch
        {
            CpuIsa.Avx512 => (Avx512F.IsSupported, "this CPU (or DOTNET_EnableAVX512=0) has no avx512f"),
            CpuIsa.Avx2 => (Avx2.IsSupported && Fma.IsSupported, "this CPU (or DOTNET_EnableAVX2=0) has no avx2+fma"),
            CpuIsa.Neon => (AdvSimd.Arm64.IsSupported, "this is not an ARM64 CPU with Advanced SIMD"),
            CpuIsa.Portable => (Vector128.IsHardwareAccelerated, "128-bit vectors are not hardware accelerated (DOTNET_EnableHWIntrinsic=0?)"),
            CpuIsa.Scalar => (true, ""),
            _ => (false, $"unknown isa {isa}"),
        };
        if (ok) why = "";
        return ok;
    }

    /// <summary>
    /// Resolves an <c>engine.cpu_isa</c> value. "portable" runs the Vector128 kernels where 128-bit
    /// vectors are accelerated and the scalar ones where not. A forced choice the CPU lacks throws,
    /// naming the setting.
    /// </summary>
    public static (CpuIsa Isa, string Reason) Resolve(string? setting)
    {
        var s = (setting ?? "auto").Trim().ToLowerInvariant();
        if (s is "" or "auto") return Describe();
        CpuIsa isa = s switch
        {
            "avx512" => CpuIsa.Avx512,
            "avx2" => CpuIsa.Avx2,
            "neon" => CpuIsa.Neon,
            "portable" => Vector128.IsHardwareAccelerated ? CpuIsa.Portable : CpuIsa.Scalar,
            "scalar" => CpuIsa.Scalar,
            _ => throw new CpuIsaUnavailableException($"engine.cpu_isa must be {Settings}, got '{setting}'"),
        };
        if (!IsSupported(isa, out var why)) throw new CpuIsaUnavailableException($"engine.cpu_isa: {s}, but {why}");
        return (isa, "forced by engine.cpu_isa");
    }

    /// <summary>The short name used in logs, /version, metrics labels and benchmark JSON.</summary>
    public static string Name(CpuIsa isa) => isa switch
    {
        CpuIsa.Avx512 => "avx512",
        CpuIsa.Avx2 => "avx2",
        CpuIsa.Neon => "neon",
        CpuIsa.Portable => "portable",
        _ => "scalar",
    };

    /// <summary>
    /// The int8 dot product the quantized kernels of <paramref name="isa"/> run on this CPU: the AVX2
    /// and NEON kernels take the single-instruction form where the CPU has it (AVX-VNNI vpdpbusd, sdot)
    /// and a widening sequence otherwise, so a benchmark or a test leg records which one ran.
    /// </summary>
    public static string Int8Dot(CpuIsa isa) => isa switch
    {
        // .NET 10 exposes vpdpbusd only in its VEX (256-bit) form.
        CpuIsa.Avx512 => "vpmaddubsw",
        CpuIsa.Avx2 => AvxVnni.IsSupported ? "avx-vnni" : "vpmaddubsw",
        CpuIsa.Neon => Dp.IsSupported ? "sdot" : "smull",
        CpuIsa.Portable => "vector128",
        _ => "scalar",
    };

    /// <summary>What a person reads: "avx2+fma", "portable (vector128)".</summary>
    public static string Label(CpuIsa isa) => isa switch
    {
        CpuIsa.Avx512 => "avx512",
        CpuIsa.Avx2 => "avx2+fma",
        CpuIsa.Neon => "neon",
        CpuIsa.Portable => "portable (vector128)",
        _ => "portable (scalar)",
    };
}
