using System.Diagnostics.CodeAnalysis;

namespace Loom.Gateway.Tokenization;

/// <summary>A Hugging Face tokenizer (tokenizer.json), as the gateway uses it.</summary>
public interface ITokenizer
{
    int VocabSize { get; }

    /// <summary>Token ids of <paramref name="text"/>; special tokens written in the text are recognised as such.</summary>
    int[] Encode(string text, bool addSpecialTokens = false);

    /// <summary>
    /// <see cref="Encode"/> with a length check that runs first: false (ids null) when the text has
    /// more than <paramref name="maxTokens"/> tokens. Tokenizers that can tell early stop there
    /// rather than tokenize the rest (<see cref="HfTokenizer"/>); this default tokenizes it all.
    /// </summary>
    bool TryEncode(string text, bool addSpecialTokens, int maxTokens, [NotNullWhen(true)] out int[]? ids)
    {
        ids = Encode(text, addSpecialTokens);
        if (ids.Length <= maxTokens) return true;
        ids = null;
        return false;
    }

    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true);

    bool IsSpecial(int id);

    /// <summary>The id of a token string (e.g. "&lt;|im_end|&gt;"), or null.</summary>
    int? TokenToId(string token);

    string? BosToken { get; }
    string? EosToken { get; }
}

/// <summary>A model's chat template (Jinja, from tokenizer_config.json), rendered to the prompt text.</summary>
public interface IChatTemplate
{
    /// <summary>
    /// Renders <paramref name="messagesJson"/> (a JSON array of OpenAI chat messages) with
    /// add_generation_prompt, optional tools (JSON array) and extra template kwargs (e.g. enable_thinking).
    /// </summary>
    string Render(string messagesJson, bool addGenerationPrompt, string? toolsJson = null, IReadOnlyDictionary<string, object?>? extraKwargs = null);
}
