using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Microsoft.ML.Tokenizers;
using Xunit.Abstractions;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Writes the tokenizer folder once; deriving 50000 merges is the slow part.</summary>
public sealed class Gpt2TokenizerFolderFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "loom-gpt2tok-" + Guid.NewGuid().ToString("N"));

    public Gpt2TokenizerFolderFixture() => Gpt2TokenizerFiles.Write(Dir);

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { /* temp dir; best effort */ }
    }
}

public sealed class Gpt2TokenizerFilesTests : IClassFixture<Gpt2TokenizerFolderFixture>
{
    // HF's ByteLevel pre-tokenizer regex (the original GPT-2 pattern), written out here rather than
    // borrowed from TiktokenTokenizer so the BPE side of the comparison is independent.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly Gpt2TokenizerFolderFixture _folder;
    private readonly ITestOutputHelper _output;

    public Gpt2TokenizerFilesTests(Gpt2TokenizerFolderFixture folder, ITestOutputHelper output)
    {
        _folder = folder;
        _output = output;
    }

    private string TokenizerJsonPath => Path.Combine(_folder.Dir, "tokenizer.json");

    [Fact]
    public void Files_AreDeterministic_AndHaveGpt2Sizes()
    {
        string second = Path.Combine(_folder.Dir, "again");
        Gpt2TokenizerFiles.Write(second);
        foreach (string name in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(_folder.Dir, name)), File.ReadAllBytes(Path.Combine(second, name)));
        }

        using var doc = JsonDocument.Parse(File.ReadAllBytes(TokenizerJsonPath));
        var model = doc.RootElement.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        var vocab = model.GetProperty("vocab").EnumerateObject().ToList();
        Assert.Equal(Gpt2TokenizerFiles.VocabSize, vocab.Count);
        // Ids are exactly 0..50256, each once.
        Assert.Equal(Enumerable.Range(0, Gpt2TokenizerFiles.VocabSize), vocab.Select(p => p.Value.GetInt32()).Order());
        Assert.Equal(50000, model.GetProperty("merges").GetArrayLength());
        Assert.Equal(Gpt2TokenizerFiles.EndOfTextId, vocab.Single(p => p.Name == Gpt2TokenizerFiles.EndOfText).Value.GetInt32());
        Assert.Equal(0, vocab.Single(p => p.Name == "!").Value.GetInt32());
        Assert.Equal(220, vocab.Single(p => p.Name == "Ġ").Value.GetInt32());
        // The first GPT-2 merge ("Ġ t" -> "Ġt", rank 256) is well known.
        Assert.Equal("Ġ t", model.GetProperty("merges")[0].GetString());

        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_folder.Dir, "tokenizer_config.json")));
        Assert.Equal("GPT2Tokenizer", config.RootElement.GetProperty("tokenizer_class").GetString());
        Assert.Equal("<|endoftext|>", config.RootElement.GetProperty("eos_token").GetString());
        Assert.True(config.RootElement.GetProperty("added_tokens_decoder").GetProperty("50256").GetProperty("special").GetBoolean());
        Assert.Contains("add_generation_prompt", config.RootElement.GetProperty("chat_template").GetString());
    }

    [Fact]
    public void BpeFromWrittenFiles_MatchesTiktokenGpt2()
    {
        var bpe = CreateBpeFromWrittenJson();
        var tiktoken = TiktokenTokenizer.CreateForModel("gpt2");
        var texts = Corpus();
        int tokens = 0;
        foreach (string text in texts)
        {
            var expected = tiktoken.EncodeToIds(text);
            var actual = bpe.EncodeToIds(text, considerPreTokenization: true, considerNormalization: false);
            Assert.True(expected.SequenceEqual(actual),
                $"ids differ for {JsonSerializer.Serialize(text)}: tiktoken [{string.Join(",", expected)}] bpe [{string.Join(",", actual)}]");
            Assert.Equal(text, bpe.Decode(actual));
            tokens += actual.Count;
        }
        _output.WriteLine($"BpeTokenizer == TiktokenTokenizer(gpt2) on {texts.Count} strings, {tokens} tokens");
    }

    [SkippableFact]
    public void HfRustTokenizers_ViaNpm_MatchTiktokenGpt2()
    {
        string? moduleDir = NpmTokenizers.TryInstall(out string why);
        if (moduleDir is null)
        {
            _output.WriteLine("skipped: " + why);
        }
        Skip.If(moduleDir is null, why);

        var texts = Corpus();
        string work = Path.Combine(_folder.Dir, "node");
        Directory.CreateDirectory(work);
        string inputPath = Path.Combine(work, "texts.json");
        string outputPath = Path.Combine(work, "ids.json");
        File.WriteAllText(inputPath, JsonSerializer.Serialize(texts), new UTF8Encoding(false));
        string script = Path.Combine(work, "encode.js");
        File.WriteAllText(script, NpmTokenizers.EncodeScript);

        var (code, stderr) = NpmTokenizers.Run("node", [script, moduleDir!, TokenizerJsonPath, inputPath, outputPath], work);
        Assert.True(code == 0, "node failed: " + stderr);

        var hf = JsonSerializer.Deserialize<HfResult[]>(File.ReadAllText(outputPath))!;
        var tiktoken = TiktokenTokenizer.CreateForModel("gpt2");
        Assert.Equal(texts.Count, hf.Length);
        int tokens = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            var expected = tiktoken.EncodeToIds(texts[i]);
            Assert.True(expected.SequenceEqual(hf[i].ids),
                $"HF ids differ for {JsonSerializer.Serialize(texts[i])}: tiktoken [{string.Join(",", expected)}] hf [{string.Join(",", hf[i].ids)}]");
            Assert.Equal(texts[i], hf[i].decoded);
            tokens += expected.Count;
        }
        _output.WriteLine($"HF tokenizers (npm @anush008/tokenizers) == TiktokenTokenizer(gpt2) on {texts.Count} strings, {tokens} tokens");
    }

    // Property names follow the JSON the node script writes.
    private sealed record HfResult(int[] ids, string decoded);

    private BpeTokenizer CreateBpeFromWrittenJson()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TokenizerJsonPath));
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject()
            .Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32()))
            .ToList();
        var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.GetString()!).ToList();
        var special = new Dictionary<string, int> { [Gpt2TokenizerFiles.EndOfText] = Gpt2TokenizerFiles.EndOfTextId };
        return BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            SpecialTokens = special,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(Gpt2Pattern, RegexOptions.Compiled), special),
        });
    }

    /// <summary>Hand-picked edge cases plus a few hundred seeded random mixes of scripts.</summary>
    private static List<string> Corpus()
    {
        var texts = new List<string>
        {
            "Hello world",
            " Hello world",
            "   leading spaces and trailing   ",
            "The quick brown fox jumps over the lazy dog.",
            "I'm sure they'll say it's what we've done, isn't it? You'd know.",
            "1234567890 3.14159 -42 1e10 0x1F 2024-06-01 12:30",
            "!!! ??? ... --- === +++ @#$%^&*()[]{};:'\",.<>/\\|`~",
            "tabs\tand\nnewlines\r\n\n\n  indented\n\tcode();",
            "emoji: 😀🎉👍🏽 👨‍👩‍👧 ❤️",
            "中文测试：你好，世界！ 日本語のテキスト 한국어",
            "Ünïcödé àccénts café naïve façade",
            "def f(x):\n    return x ** 2  # square\n",
            "   ",
            "a",
            "<|endoftext|> is recognised as the special token, like HF added_tokens",
            "https://example.com/path?query=1&other=two#frag",
        };
        var rng = new Random(20240601);
        string[] pieces =
        [
            "the", " the", "token", "izer", " Loom", "GPU", " 42", "7", "'s", "'ll", "'re", ".", ",", "!", "?",
            " ", "  ", "\n", "\t", "\n\n", "😀", "🚀", "中", "文", "字", "한", "é", "ß", "Ω", "λ", "—", "…",
            "(", ")", "{", "}", "\"", "'", "-", "_", "=", "+", "/", "\\", "#", "$", "%", "1", "99", "2.5",
        ];
        for (int i = 0; i < 300; i++)
        {
            var sb = new StringBuilder();
            int n = rng.Next(1, 40);
            for (int j = 0; j < n; j++)
            {
                if (rng.Next(4) == 0)
                {
                    // Random printable ASCII or Latin-1/Greek/CJK code points, never lone surrogates.
                    int kind = rng.Next(4);
                    char c = kind switch
                    {
                        0 => (char)rng.Next(0x20, 0x7F),
                        1 => (char)rng.Next(0xA0, 0x180),
                        2 => (char)rng.Next(0x391, 0x3CA),
                        _ => (char)rng.Next(0x4E00, 0x9FA6),
                    };
                    sb.Append(c);
                }
                else
                {
                    sb.Append(pieces[rng.Next(pieces.Length)]);
                }
            }
            texts.Add(sb.ToString());
        }
        return texts;
    }
}
