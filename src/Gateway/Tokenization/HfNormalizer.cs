using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Tokenization;

/// <summary>tokenizer.json "normalizer": a chain of string rewrites applied to each piece of text
/// between added tokens (HF normalizes after splitting off non-normalized added tokens).</summary>
internal sealed class HfNormalizer
{
    private readonly List<Func<string, string>> _steps = [];

    private HfNormalizer()
    {
    }

    public static HfNormalizer? Parse(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var n = new HfNormalizer();
        n.Add(e);
        return n;
    }

    public string Apply(string text)
    {
        foreach (var step in _steps)
        {
            text = step(text);
        }
        return text;
    }

    private void Add(JsonElement e)
    {
        string type = e.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (var child in e.GetProperty("normalizers").EnumerateArray())
                {
                    Add(child);
                }
                break;
            case "NFC":
                _steps.Add(UnicodeNormalizer.Nfc);
                break;
            case "NFD":
                _steps.Add(UnicodeNormalizer.Nfd);
                break;
            case "Lowercase":
                _steps.Add(s => s.ToLowerInvariant());
                break;
            case "Prepend":
            {
                string prepend = e.GetProperty("prepend").GetString() ?? "";
                // HF prepends only to non-empty strings.
                _steps.Add(s => s.Length == 0 ? s : prepend + s);
                break;
            }
            case "Replace":
            {
                var replace = Replacement(e);
                _steps.Add(replace);
                break;
            }
            case "Strip":
            {
                bool left = e.TryGetProperty("strip_left", out var l) && l.GetBoolean();
                bool right = e.TryGetProperty("strip_right", out var r) && r.GetBoolean();
                _steps.Add(s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s);
                break;
            }
            default:
                // NFKC/NFKD and the SentencePiece "Precompiled" charsmap need Unicode
                // compatibility data we do not carry; failing loudly beats silently wrong ids.
                throw new NotSupportedException($"tokenizer.json normalizer '{type}' is not supported");
        }
    }

    /// <summary>HF's Replace (normalizer and decoder): pattern is {"String": s} or {"Regex": r}.</summary>
    internal static Func<string, string> Replacement(JsonElement e)
    {
        string content = e.GetProperty("content").GetString() ?? "";
        var pattern = e.GetProperty("pattern");
        if (pattern.TryGetProperty("String", out var str))
        {
            string from = str.GetString() ?? "";
            return s => from.Length == 0 ? s : s.Replace(from, content, StringComparison.Ordinal);
        }
        var regex = new Regex(pattern.GetProperty("Regex").GetString() ?? "", RegexOptions.CultureInvariant);
        return s =>
        {
            var spans = new List<(int Start, int Length)>();
            UnicodeRegexSplitter.Matches(regex, s, spans);
            if (spans.Count == 0)
            {
                return s;
            }
            var sb = new StringBuilder(s.Length);
            int pos = 0;
            foreach (var (start, length) in spans)
            {
                sb.Append(s, pos, start - pos).Append(content);
                pos = start + length;
            }
            return sb.Append(s, pos, s.Length - pos).ToString();
        };
    }
}
