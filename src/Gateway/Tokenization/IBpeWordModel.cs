namespace Loom.Gateway.Tokenization;

/// <summary>The "model" part of tokenizer.json: turns one pre-tokenized word into ids.</summary>
internal interface IBpeWordModel
{
    void EncodeWord(string word, List<int> ids);

    /// <summary>
    /// A lower bound on how many ids <see cref="EncodeWord"/> appends for <paramref name="word"/>,
    /// found without merging (cheap, linear): what lets a prompt be refused for its length before
    /// it is tokenized (<see cref="HfTokenizer.TryEncode"/>). Never more than the real count.
    /// </summary>
    int MinTokens(string word);
}
