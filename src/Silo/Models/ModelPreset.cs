namespace Loom.Silo.Models;

/// <summary>
/// The shape of a model family member, enough to write its Hugging Face config.json. Token ids
/// default to the minimal GGUF tokenizer's (bos 1, eos 2) so tiny models agree with llama.cpp.
/// </summary>
public sealed record ModelPreset(
    string Name,
    ModelArchitecture Architecture,
    int Hidden,
    int Layers,
    int Heads,
    int KvHeads,
    int HeadDim,
    int Ffn,
    int Vocab,
    bool QkvBias,
    bool Tied,
    double RopeTheta,
    double RmsEps,
    int MaxPos,
    RopeScaling? RopeScaling = null,
    int BosTokenId = 1,
    int EosTokenId = 2,
    int? SlidingWindow = null)
{
    /// <summary>The HF class name in config.json "architectures".</summary>
    public string ArchitectureName => Architecture switch
    {
        ModelArchitecture.Llama => "LlamaForCausalLM",
        ModelArchitecture.Mistral => "MistralForCausalLM",
        ModelArchitecture.Qwen2 => "Qwen2ForCausalLM",
        ModelArchitecture.Qwen3 => "Qwen3ForCausalLM",
        _ => throw new ArgumentOutOfRangeException(nameof(Architecture), Architecture, null),
    };

    /// <summary>The HF "model_type".</summary>
    public string ModelType => Architecture switch
    {
        ModelArchitecture.Llama => "llama",
        ModelArchitecture.Mistral => "mistral",
        ModelArchitecture.Qwen2 => "qwen2",
        ModelArchitecture.Qwen3 => "qwen3",
        _ => throw new ArgumentOutOfRangeException(nameof(Architecture), Architecture, null),
    };
}
