using System.Text;
using System.Text.Json;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;
using Microsoft.ML.Tokenizers;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// Placeholder <see cref="IModelTextFactory"/> until the tokenizer.json loader and the Jinja engine
/// land: it serves GPT-2-vocabulary models (the built-in demo model) with the tiktoken GPT-2
/// tokenizer and the demo's "### role" template, and refuses any other vocabulary clearly rather
/// than tokenizing wrongly. Replace by registering an IModelTextFactory that returns
/// HfTokenizer.FromJson(info.TokenizerJson, info.TokenizerConfigJson) and
/// ChatTemplate.FromTokenizerConfig(info.TokenizerConfigJson).
/// </summary>
public sealed class Gpt2FallbackTextFactory : IModelTextFactory
{
    public ITokenizer CreateTokenizer(ModelInfo info) =>
        info.VocabSize == Gpt2TokenizerFiles.VocabSize
            ? new Gpt2Tokenizer()
            : throw new NotSupportedException($"model '{info.Name}' has a {info.VocabSize}-token vocabulary; only GPT-2's is served until the tokenizer.json loader is wired in");

    public IChatTemplate? CreateChatTemplate(ModelInfo info) => new RoleHeaderTemplate();

    private sealed class Gpt2Tokenizer : ITokenizer
    {
        private readonly TiktokenTokenizer _t = TiktokenTokenizer.CreateForModel("gpt2");

        public int VocabSize => Gpt2TokenizerFiles.VocabSize;
        public string? BosToken => Gpt2TokenizerFiles.EndOfText;
        public string? EosToken => Gpt2TokenizerFiles.EndOfText;
        public int[] Encode(string text, bool addSpecialTokens = false) => [.. _t.EncodeToIds(text)];
        public bool IsSpecial(int id) => id == Gpt2TokenizerFiles.EndOfTextId;
        public int? TokenToId(string token) => token == Gpt2TokenizerFiles.EndOfText ? Gpt2TokenizerFiles.EndOfTextId : null;

        public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
        {
            var list = new List<int>(ids.Length);
            foreach (int id in ids)
                if (!(skipSpecialTokens && IsSpecial(id)) && id >= 0 && id < VocabSize) list.Add(id);
            return _t.Decode(list);
        }
    }

    /// <summary>Renders exactly what <see cref="Gpt2TokenizerFiles.ChatTemplate"/> says.</summary>
    private sealed class RoleHeaderTemplate : IChatTemplate
    {
        public string Render(string messagesJson, bool addGenerationPrompt, string? toolsJson = null, IReadOnlyDictionary<string, object?>? extraKwargs = null)
        {
            var sb = new StringBuilder();
            using var doc = JsonDocument.Parse(messagesJson);
            foreach (var m in doc.RootElement.EnumerateArray())
            {
                string content = m.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
                sb.Append("### ").Append(m.GetProperty("role").GetString()).Append('\n').Append(content).Append("\n\n");
            }
            if (addGenerationPrompt) sb.Append("### assistant\n");
            return sb.ToString();
        }
    }
}
