using System.Reflection;

namespace Loom.Kernels.Cuda;

/// <summary>
/// The PTX modules (Cuda/Kernels/*.cu compiled by `ptx build` in tests/Tools, committed, embedded) and every
/// entry point C# launches. The Ptx tests check each name exists in its module and that the
/// committed PTX is what NVRTC makes of the sources today.
/// </summary>
public static class CudaKernels
{
    public static IReadOnlyDictionary<string, string[]> EntriesByModule { get; } = new Dictionary<string, string[]>
    {
        ["elementwise"] = ["embedding_bf16", "embedding_f32", "rms_norm", "fused_add_rms_norm", "silu_and_mul", "add_f32", "rope_rotate_half", "gather_rows", "copy_columns", "f32_to_bf16", "add_bias"],
        ["kv_cache"] = ["reshape_and_cache"],
        ["attention"] = ["paged_attention_decode", "paged_attention_reduce", "paged_attention_prefill"],
        ["sampling"] = ["logits_adjust", "apply_mask", "sample_rows", "top_logprobs"],
    };

    /// <summary>The header pasted into every module through NVRTC's header list.</summary>
    public const string CommonHeader = "common.cuh";

    /// <summary>The embedded PTX of one module.</summary>
    public static string Ptx(string module)
    {
        var name = $"Loom.Kernels.Cuda.{module}.ptx";
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"PTX module '{module}' is not embedded ({name})");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }
}
