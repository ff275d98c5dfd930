using System.Text;
using System.Text.Json;

namespace Loom.Gateway.Tokenization;

/// <summary>tokenizer.json "decoder": HF decoders work on the list of token strings, each step
/// (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip) rewriting the list; the result is
/// the concatenation. Mirrored step by step so quirks (per-token Strip, U+FFFD per byte for
/// invalid byte-fallback runs) match HF exactly.</summary>
internal sealed class HfDecoder
{
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    private readonly List<Func<List<string>, List<string>>> _steps = [];

    private HfDecoder()
    {
    }

    public static HfDecoder Parse(JsonElement e)
    {
        var d = new HfDecoder();
        if (e.ValueKind == JsonValueKind.Object)
        {
            d.Add(e);
        }
        return d;
    }

    public bool IsEmpty => _steps.Count == 0;

    public string Decode(List<string> tokens)
    {
        foreach (var step in _steps)
        {
            tokens = step(tokens);
        }
        return string.Concat(tokens);
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = Gpt2TokenizerFiles.ByteToUnicode();
        var d = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++)
        {
            d[map[b]] = (byte)b;
        }
        return d;
    }

    private void Add(JsonElement e)
    {
        string type = e.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (var child in e.GetProperty("decoders").EnumerateArray())
                {
                    Add(child);
                }
                break;
            case "ByteLevel":
                _steps.Add(ByteLevel);
                break;
            case "Replace":
            {
                var replace = HfNormalizer.Replacement(e);
                _steps.Add(tokens => tokens.ConvertAll(t => replace(t)));
                break;
            }
            case "ByteFallback":
                _steps.Add(ByteFallback);
                break;
            case "Fuse":
                _steps.Add(tokens => [string.Concat(tokens)]);
                break;
            case "Strip":
            {
                char content = (e.GetProperty("content").GetString() ?? " ")[0];
                int start = e.GetProperty("start").GetInt32();
                int stop = e.GetProperty("stop").GetInt32();
                _steps.Add(tokens => tokens.ConvertAll(t => Strip(t, content, start, stop)));
                break;
            }
            case "Metaspace":
            {
                string replacement = e.TryGetProperty("replacement", out var r) ? r.GetString() ?? "▁" : "▁";
                bool prepend = !(e.TryGetProperty("prepend_scheme", out var ps) && ps.GetString() == "never")
                    && !(e.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.False);
                _steps.Add(tokens =>
                {
                    var output = new List<string>(tokens.Count);
                    for (int i = 0; i < tokens.Count; i++)
                    {
                        string t = tokens[i].Replace(replacement, " ", StringComparison.Ordinal);
                        if (i == 0 && prepend && t.StartsWith(' '))
                        {
                            t = t[1..];
                        }
                        output.Add(t);
                    }
                    return output;
                });
                break;
            }
            default:
                throw new NotSupportedException($"tokenizer.json decoder '{type}' is not supported");
        }
    }

    // All tokens become one string: each token's chars map back to bytes, or (if any char is not
    // a byte-level char, e.g. an added token) its own UTF-8; invalid UTF-8 becomes U+FFFD.
    private static List<string> ByteLevel(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (string t in tokens)
        {
            int mark = bytes.Count;
            bool ok = true;
            foreach (char c in t)
            {
                if (!CharToByte.TryGetValue(c, out byte b))
                {
                    ok = false;
                    break;
                }
                bytes.Add(b);
            }
            if (!ok)
            {
                bytes.RemoveRange(mark, bytes.Count - mark);
                bytes.AddRange(Encoding.UTF8.GetBytes(t));
            }
        }
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }

    // Runs of <0xNN> tokens become their UTF-8 text, or one U+FFFD per byte when invalid.
    private static List<string> ByteFallback(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (string t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
            {
                pending.Add(b);
                continue;
            }
            Flush(pending, output);
            output.Add(t);
        }
        Flush(pending, output);
        return output;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private static void Flush(List<byte> pending, List<string> output)
    {
        if (pending.Count == 0)
        {
            return;
        }
        try
        {
            output.Add(StrictUtf8.GetString(pending.ToArray()));
        }
        catch (DecoderFallbackException)
        {
            for (int i = 0; i < pending.Count; i++)
            {
                output.Add("\uFFFD");
            }
        }
        pending.Clear();
    }

    private static string Strip(string t, char content, int start, int stop)
    {
        int s = 0;
        while (s < start && s < t.Length && t[s] == content)
        {
            s++;
        }
        int e = t.Length;
        while (t.Length - e < stop && e > s && t[e - 1] == content)
        {
            e--;
        }
        return t[s..e];
    }
}
