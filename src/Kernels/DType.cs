namespace Loom.Kernels;

/// <summary>Element types Loom stores: activations are F32; weights keep their file dtype.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    I32,

    /// <summary>GGUF/ggml Q8_0: blocks of 32, an fp16 scale and 32 int8 (34 bytes).</summary>
    Q8_0,

    /// <summary>GGUF/ggml Q4_0: blocks of 32, an fp16 scale and 16 bytes of nibbles, value (q-8)·d (18 bytes).</summary>
    Q4_0,

    /// <summary>GGUF/ggml Q4_K: super-blocks of 256, 8 sub-blocks of 32 with 6-bit scales and mins (144 bytes).</summary>
    Q4_K,

    /// <summary>GGUF/ggml Q6_K: super-blocks of 256, 16 sub-blocks of 16 with int8 scales, 6-bit values (210 bytes).</summary>
    Q6_K,

    /// <summary>
    /// GGUF/ggml Q5_0: blocks of 32, an fp16 scale, 32 high bits and 16 bytes of nibbles, value (q-16)·d
    /// (22 bytes). llama.cpp's Q4_K_M writes it for tensors whose rows are not whole 256-blocks.
    /// </summary>
    Q5_0,
}

public static class DTypeExtensions
{
    /// <summary>Bytes per element; quantized types have none (see <see cref="ByteCount"/>).</summary>
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "a quantized type has no per-element size"),
    };

    /// <summary>True for the block-quantized GGUF types.</summary>
    public static bool IsQuantized(this DType dtype) => dtype is DType.Q8_0 or DType.Q4_0 or DType.Q5_0 or DType.Q4_K or DType.Q6_K;

    /// <summary>Elements per quantization block (1 for plain types).</summary>
    public static int BlockElements(this DType dtype) => dtype switch
    {
        DType.Q8_0 or DType.Q4_0 or DType.Q5_0 => 32,
        DType.Q4_K or DType.Q6_K => 256,
        _ => 1,
    };

    /// <summary>Bytes per quantization block (the element size for plain types).</summary>
    public static int BlockBytes(this DType dtype) => dtype switch
    {
        DType.Q8_0 => 34,
        DType.Q4_0 => 18,
        DType.Q5_0 => 22,
        DType.Q4_K => 144,
        DType.Q6_K => 210,
        _ => dtype.Size(),
    };

    /// <summary>Bytes that <paramref name="elements"/> elements occupy (a whole number of blocks for quantized types).</summary>
    public static long ByteCount(this DType dtype, long elements)
    {
        int be = dtype.BlockElements();
        if (elements % be != 0) throw new ArgumentException($"{elements} elements are not a whole number of {dtype} blocks of {be}");
        return elements / be * dtype.BlockBytes();
    }

    /// <summary>The safetensors / HF spelling ("BF16", "F16", "F32", "I32").</summary>
    public static string SafetensorsName(this DType dtype) => dtype switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.I32 => "I32",
        DType.Q8_0 => "Q8_0",
        DType.Q4_0 => "Q4_0",
        DType.Q5_0 => "Q5_0",
        DType.Q4_K => "Q4_K",
        DType.Q6_K => "Q6_K",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool TryParseSafetensors(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "I32": dtype = DType.I32; return true;
            default: dtype = default; return false;
        }
    }
}
