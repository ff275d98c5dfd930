using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// The served model's text tools, from what the worker ships in <see cref="ModelInfo"/> (so a
/// gateway needs no access to the model folder): tokenizer.json through <see cref="HfTokenizer"/>,
/// the chat template from tokenizer_config.json through Loom's Jinja engine, and byte-level text
/// for workers without a tokenizer (the simulated backend, bare test models).
/// </summary>
public sealed class HfModelTextFactory : IModelTextFactory
{
    public ITokenizer CreateTokenizer(ModelInfo info) =>
        string.IsNullOrEmpty(info.TokenizerJson) ? new ByteTokenizer(info.VocabSize) : HfTokenizer.FromJson(info.TokenizerJson, info.TokenizerConfigJson);

    public IChatTemplate? CreateChatTemplate(ModelInfo info) =>
        info.TokenizerConfigJson is { Length: > 0 } config ? ChatTemplate.FromTokenizerConfig(config)
        : string.IsNullOrEmpty(info.TokenizerJson) ? PlainChatTemplate.Instance
        : null;
}

/// <summary>"role: content" lines, for workers that ship no template (simulated, bare test models).</summary>
public sealed class PlainChatTemplate : IChatTemplate
{
    public static readonly PlainChatTemplate Instance = new();
    private static readonly ChatTemplate Template = new(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");

    public string Render(string messagesJson, bool addGenerationPrompt, string? toolsJson = null, IReadOnlyDictionary<string, object?>? extraKwargs = null) =>
        Template.Render(messagesJson, addGenerationPrompt, toolsJson, extraKwargs);
}
