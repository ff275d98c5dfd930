using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>GGUF tensor types we read and write; values are the ggml type ids stored in the file.</summary>
public enum GgufType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q5_0 = 6,
    Q8_0 = 8,
    Q4_K = 12,
    Q6_K = 14,
    BF16 = 30,

    /// <summary>
    /// Not a tensor type: the writer's "Q4_K_M" mix (llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M, file type 15):
    /// Q4_K, with Q6_K for output, and for attn_v and ffn_down in about half the layers.
    /// </summary>
    Q4_K_M = 0x1000_000F,
}

public static class GgufTypes
{
    /// <summary>The dtype Loom keeps a tensor of this type in (null: a type Loom does not load).</summary>
    public static DType? ToDType(GgufType t) => t switch
    {
        GgufType.F32 => DType.F32,
        GgufType.F16 => DType.F16,
        GgufType.BF16 => DType.BF16,
        GgufType.Q8_0 => DType.Q8_0,
        GgufType.Q4_0 => DType.Q4_0,
        GgufType.Q5_0 => DType.Q5_0,
        GgufType.Q4_K => DType.Q4_K,
        GgufType.Q6_K => DType.Q6_K,
        _ => null,
    };

    /// <summary>ggml's names for the type ids, so an unsupported tensor is named in errors.</summary>
    public static string Name(uint id) => id switch
    {
        0 => "F32", 1 => "F16", 2 => "Q4_0", 3 => "Q4_1", 6 => "Q5_0", 7 => "Q5_1", 8 => "Q8_0", 9 => "Q8_1",
        10 => "Q2_K", 11 => "Q3_K", 12 => "Q4_K", 13 => "Q5_K", 14 => "Q6_K", 15 => "Q8_K", 16 => "IQ2_XXS",
        17 => "IQ2_XS", 18 => "IQ3_XXS", 19 => "IQ1_S", 20 => "IQ4_NL", 21 => "IQ3_S", 22 => "IQ2_S", 23 => "IQ4_XS",
        24 => "I8", 25 => "I16", 26 => "I32", 27 => "I64", 28 => "F64", 29 => "IQ1_M", 30 => "BF16",
        _ => $"type {id}",
    };

    /// <summary>Bytes a tensor of <paramref name="elements"/> takes in the file.</summary>
    public static long ByteLength(GgufType t, long elements) =>
        ToDType(t) is { } d ? d.ByteCount(elements) : throw new ArgumentException($"GGUF type {Name((uint)t)} is not supported");

    /// <summary>`--gguf-type` spellings: f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k, q4_k_m.</summary>
    public static GgufType Parse(string s) => s.ToLowerInvariant() switch
    {
        "f32" => GgufType.F32,
        "f16" => GgufType.F16,
        "bf16" => GgufType.BF16,
        "q8_0" => GgufType.Q8_0,
        "q4_0" => GgufType.Q4_0,
        "q5_0" => GgufType.Q5_0,
        "q4_k" => GgufType.Q4_K,
        "q6_k" => GgufType.Q6_K,
        "q4_k_m" => GgufType.Q4_K_M,
        var other => throw new ArgumentException($"--gguf-type must be f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k or q4_k_m, not '{other}'"),
    };
}
