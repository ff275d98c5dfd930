using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// The served model's own tokenizer.json and chat template, both shipped by the worker in
/// <see cref="ModelInfo"/> so a gateway needs no access to the model folder. A worker without a
/// tokenizer (the simulated backend) gets byte-level text.
/// </summary>
public sealed class HfModelTextFactory : IModelTextFactory
{
    public ITokenizer CreateTokenizer(ModelInfo info) =>
        string.IsNullOrEmpty(info.TokenizerJson)
            ? new ByteTokenizer(info.VocabSize)
            : HfTokenizer.FromJson(info.TokenizerJson, info.TokenizerConfigJson);

    public IChatTemplate? CreateChatTemplate(ModelInfo info) =>
        info.TokenizerConfigJson is { Length: > 0 } config ? ChatTemplate.FromTokenizerConfig(config) : null;
}
