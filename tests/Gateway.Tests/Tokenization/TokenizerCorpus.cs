using System.Text;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Strings that tend to break tokenizers, plus seeded random mixes of the same classes.</summary>
internal static class TokenizerCorpus
{
    public static readonly string[] HandPicked =
    [
        "",
        " ",
        "Hello world",
        " Hello world",
        "   leading spaces, trailing   ",
        "multiple     inner      spaces",
        "tabs\tand\ttabs\t\t",
        "line\nbreaks\r\nand\n\n\nblank lines\n",
        "\n\n  indented\n\tcode();\n",
        "emoji: 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🇺🇸 heart ❤️ keycap 1️⃣",
        "中文测试：你好，世界！ 日本語のテキスト、カタカナ 한국어 문장",
        "outside the BMP: 𝟏𝟐𝟑 𠀀𠀁 𝐀𝐁𝐂 𝔘𝔫𝔦 𝄞 🀄 '𝐬 'S",
        "decomposed: e\u0301 a\u0308 n\u0303 \u1100\u1161 and composed: é ä ñ 가",
        "numbers 1234567 3.14159 -42 1e10 0x1F 2024-06-01 12:30 1,000,000 ١٢٣",
        "I'm sure they'll say it's what we've done, isn't it? You'd know. I'M SHOUTING, DON'T",
        "'s 't 're 've 'm 'll 'd",
        "def f(x):\n    return x ** 2  # square\n\nif __name__ == '__main__':\n    print(f\"{f(3)=}\")\n",
        "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; } // C\n",
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
        "text with <|im_end|> inside and <|endoftext|> too",
        "<s> starts and </s> ends <unk> unknown",
        "<s>glued</s>",
        "  <s>  spaced  </s>  ",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhey<|eot_id|>",
        "<think>\nreasoning\n</think>\n\nanswer",
        "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
        "https://example.com/path?query=1&other=two#frag",
        "!!! ??? ... --- === +++ @#$%^&*()[]{};:'\",.<>/\\|`~",
        "Ünïcödé àccénts café naïve façade Straße ΑΒΓ αβγ Кириллица",
        "العربية مع التشكيل: كِتَابٌ हिन्दी देवनागरी ไทย",
        "nbsp\u00A0here ideographic\u3000space zero\u200Bwidth",
        "ﬁ ligature ½ fraction ² superscript ｆｕｌｌ ｗｉｄｔｈ",
        "averyveryveryverylongwordwithoutanyspacesatalltoseehowbpebehaveswithit",
        "a",
        "▁ already has the metaspace char ▁▁",
        "\u0000 nul and \u001F control",
    ];

    // Pieces drawn by the generator; each class is something a tokenizer treats specially.
    private static readonly string[] Pieces =
    [
        "the", " the", "The", "token", "izer", " Loom", "GPU", "'s", "'ll", "'RE", "n't", " I'm",
        " ", "  ", "   ", "\n", "\t", "\n\n", "\r\n", " \n", "\t\t",
        "😀", "🚀", "👨‍👩‍👧", "👍🏽", "❤️", "🇯🇵",
        "中", "文", "字", "日本", "한", "국", "の",
        "𝟏", "𠀀", "𝐀", "𝄞",
        "é", "e\u0301", "ß", "Ω", "λ", "—", "…", "ﬁ",
        "1234567", "42", "7", "3.14", "2024",
        "(", ")", "{", "}", "\"", "'", "-", "_", "=", "+", "/", "\\", "#", "$", "%", ";", "::", "->",
        "def ", "return ", "x += 1", "();",
        "<|im_end|>", "<|im_start|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|eot_id|>", "<think>",
    ];

    private static readonly (int Lo, int Hi)[] Ranges =
    [
        (0x20, 0x7E), (0xA0, 0x17F), (0x391, 0x3C9), (0x410, 0x44F), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
        (0x3041, 0x3096), (0x300, 0x36F), (0x1F600, 0x1F64F), (0x1F300, 0x1F5FF), (0x1D400, 0x1D454),
        (0x1D7CE, 0x1D7FF), (0x20000, 0x2A6D6), (0x600, 0x64A), (0x900, 0x963),
    ];

    /// <summary>Seeded random strings: 1-40 parts, each a piece or a random code point.</summary>
    public static List<string> Generated(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<string>(count);
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            sb.Clear();
            int n = rng.Next(1, 41);
            for (int j = 0; j < n; j++)
            {
                if (rng.Next(3) == 0)
                {
                    var (lo, hi) = Ranges[rng.Next(Ranges.Length)];
                    sb.Append(char.ConvertFromUtf32(rng.Next(lo, hi + 1)));
                }
                else
                {
                    sb.Append(Pieces[rng.Next(Pieces.Length)]);
                }
            }
            list.Add(sb.ToString());
        }
        return list;
    }

    public static List<string> All(int generated, int seed) => [.. HandPicked, .. Generated(generated, seed)];
}
