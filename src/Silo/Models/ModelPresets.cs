namespace Loom.Silo.Models;

/// <summary>
/// Named model shapes. The tiny ones are for tests; the real-sized ones copy the published
/// config.json of SmolLM2-135M, Qwen2.5-0.5B, Llama-3.2-1B and Llama-3-8B (with random weights).
/// </summary>
public static class ModelPresets
{
    // Tiny presets: >= 2 layers and GQA (4 heads over 2 KV heads) so layer stacking and head
    // grouping are exercised; vocab 256 leaves room for the 131 fixed GGUF tokenizer entries.
    public static readonly ModelPreset Tiny = new("tiny", ModelArchitecture.Llama,
        Hidden: 64, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 16, Ffn: 128, Vocab: 256,
        QkvBias: false, Tied: false, RopeTheta: 10000, RmsEps: 1e-5, MaxPos: 512);

    public static readonly ModelPreset TinyQwen2 = Tiny with
    {
        Name = "tiny-qwen2", Architecture = ModelArchitecture.Qwen2, QkvBias = true, Tied = true,
        RopeTheta = 1000000, RmsEps = 1e-6,
    };

    // head_dim 32 with 4 heads makes q_proj 128 wide on a 64 hidden size, as real Qwen3 does
    // (head_dim is explicit there and not hidden/heads).
    public static readonly ModelPreset TinyQwen3 = Tiny with
    {
        Name = "tiny-qwen3", Architecture = ModelArchitecture.Qwen3, HeadDim = 32, Tied = true,
        RopeTheta = 1000000, RmsEps = 1e-6,
    };

    public static readonly ModelPreset TinyMistral = Tiny with { Name = "tiny-mistral", Architecture = ModelArchitecture.Mistral };

    public static readonly ModelPreset SmolLM2_135M = new("smollm2-135m", ModelArchitecture.Llama,
        Hidden: 576, Layers: 30, Heads: 9, KvHeads: 3, HeadDim: 64, Ffn: 1536, Vocab: 49152,
        // Token ids as in SmolLM2-135M-Instruct (<|im_start|> = 1, <|im_end|> = 2); the base model uses 0/0.
        QkvBias: false, Tied: true, RopeTheta: 100000, RmsEps: 1e-5, MaxPos: 8192, BosTokenId: 1, EosTokenId: 2);

    public static readonly ModelPreset Qwen25_05B = new("qwen2.5-0.5b", ModelArchitecture.Qwen2,
        Hidden: 896, Layers: 24, Heads: 14, KvHeads: 2, HeadDim: 64, Ffn: 4864, Vocab: 151936,
        QkvBias: true, Tied: true, RopeTheta: 1000000, RmsEps: 1e-6, MaxPos: 32768, BosTokenId: 151643, EosTokenId: 151643);

    // Every dimension a multiple of 256, so a Q4_K_M file really is Q4_K and Q6_K (SmolLM2's 576
    // falls back to Q4_0/Q8_0 for most tensors): the shape for K-quant figures.
    public static readonly ModelPreset Llama32_1B = new("llama3.2-1b", ModelArchitecture.Llama,
        Hidden: 2048, Layers: 16, Heads: 32, KvHeads: 8, HeadDim: 64, Ffn: 8192, Vocab: 128256,
        QkvBias: false, Tied: true, RopeTheta: 500000, RmsEps: 1e-5, MaxPos: 131072,
        RopeScaling: new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), BosTokenId: 128000, EosTokenId: 128009);

    public static readonly ModelPreset Llama3_8B = new("llama3-8b", ModelArchitecture.Llama,
        Hidden: 4096, Layers: 32, Heads: 32, KvHeads: 8, HeadDim: 128, Ffn: 14336, Vocab: 128256,
        QkvBias: false, Tied: false, RopeTheta: 500000, RmsEps: 1e-5, MaxPos: 131072,
        RopeScaling: new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), BosTokenId: 128000, EosTokenId: 128001);

    // The built-in demo model `loom serve` generates on first use: GPT-2's vocabulary (its real
    // tokenizer ships with it), small enough to generate and answer quickly on two cores.
    public static readonly ModelPreset Demo = new("demo", ModelArchitecture.Llama,
        Hidden: 256, Layers: 4, Heads: 8, KvHeads: 4, HeadDim: 32, Ffn: 768, Vocab: 50257,
        QkvBias: false, Tied: true, RopeTheta: 10000, RmsEps: 1e-5, MaxPos: 1024, BosTokenId: 50256, EosTokenId: 50256);

    public static IReadOnlyList<ModelPreset> All { get; } =
        [Tiny, TinyQwen2, TinyQwen3, TinyMistral, SmolLM2_135M, Qwen25_05B, Llama32_1B, Llama3_8B, Demo];

    public static IReadOnlyList<string> Names { get; } = All.Select(p => p.Name).ToArray();

    /// <summary>The preset called <paramref name="name"/> (case-insensitive).</summary>
    public static ModelPreset Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown model preset '{name}' (known: {string.Join(", ", Names)})", nameof(name));
}
