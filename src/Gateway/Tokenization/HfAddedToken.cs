namespace Loom.Gateway.Tokenization;

/// <summary>One entry of tokenizer.json's added_tokens: matched in the text before the model sees it.</summary>
public sealed record HfAddedToken(
    int Id,
    string Content,
    bool Special,
    bool SingleWord = false,
    bool LStrip = false,
    bool RStrip = false,
    bool Normalized = false);
