namespace Loom.Gateway.Tokenization;

/// <summary>The "model" part of tokenizer.json: turns one pre-tokenized word into ids.</summary>
internal interface IBpeWordModel
{
    void EncodeWord(string word, List<int> ids);
}
