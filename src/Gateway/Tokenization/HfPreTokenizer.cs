using System.Text.Json;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Tokenization;

/// <summary>tokenizer.json "pre_tokenizer": splits normalized text into words for the BPE model.
/// Written by hand because Microsoft.ML.Tokenizers' RegexPreTokenizer misses non-BMP letters and
/// digits, and it has no Metaspace or Split-behaviour options. The ByteLevel step's byte-to-char
/// mapping is left to the model (BpeOptions.ByteLevel), so words stay as raw text here.</summary>
internal sealed class HfPreTokenizer
{
    // GPT-2's pattern, used by ByteLevel when use_regex is true.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private enum Behavior
    {
        Removed,
        Isolated,
        MergedWithPrevious,
        MergedWithNext,
        Contiguous,
    }

    // Each step maps the current pieces to new ones; the bool says whether the piece starts at
    // offset 0 of the original text (Metaspace's prepend_scheme "first" needs it).
    private readonly List<Func<List<(string Text, bool AtStart)>, List<(string Text, bool AtStart)>>> _steps = [];

    private HfPreTokenizer()
    {
    }

    /// <summary>True when a ByteLevel step is present: the model then works on UTF-8 bytes.</summary>
    public bool ByteLevel { get; private set; }

    public static HfPreTokenizer Parse(JsonElement e)
    {
        var p = new HfPreTokenizer();
        if (e.ValueKind == JsonValueKind.Object)
        {
            p.Add(e);
        }
        return p;
    }

    public void PreTokenize(string text, bool atStart, List<string> words)
    {
        var pieces = new List<(string Text, bool AtStart)> { (text, atStart) };
        foreach (var step in _steps)
        {
            pieces = step(pieces);
        }
        foreach (var (t, _) in pieces)
        {
            if (t.Length > 0)
            {
                words.Add(t);
            }
        }
    }

    private void Add(JsonElement e)
    {
        string type = e.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (var child in e.GetProperty("pretokenizers").EnumerateArray())
                {
                    Add(child);
                }
                break;
            case "Split":
            {
                var pattern = e.GetProperty("pattern");
                string regex = pattern.TryGetProperty("String", out var s)
                    ? Regex.Escape(s.GetString() ?? "")
                    : pattern.GetProperty("Regex").GetString() ?? "";
                var behavior = Enum.Parse<Behavior>(e.GetProperty("behavior").GetString() ?? "Isolated");
                bool invert = e.TryGetProperty("invert", out var inv) && inv.GetBoolean();
                AddSplit(new Regex(regex, RegexOptions.Compiled | RegexOptions.CultureInvariant), behavior, invert);
                break;
            }
            case "ByteLevel":
            {
                ByteLevel = true;
                bool addPrefixSpace = e.TryGetProperty("add_prefix_space", out var aps) && aps.GetBoolean();
                bool useRegex = !e.TryGetProperty("use_regex", out var ur) || ur.GetBoolean();
                if (addPrefixSpace)
                {
                    _steps.Add(pieces => pieces.Select(p => p.Text.StartsWith(' ') ? p : (" " + p.Text, p.AtStart)).ToList());
                }
                if (useRegex)
                {
                    AddSplit(new Regex(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), Behavior.Isolated, invert: false);
                }
                break;
            }
            case "Metaspace":
                AddMetaspace(e);
                break;
            case "WhitespaceSplit":
                AddSplit(new Regex(@"\s+", RegexOptions.Compiled), Behavior.Removed, invert: false);
                break;
            case "Whitespace":
                AddSplit(new Regex(@"\w+|[^\w\s]+", RegexOptions.Compiled), Behavior.Removed, invert: true);
                break;
            case "Digits":
            {
                bool individual = e.TryGetProperty("individual_digits", out var ind) && ind.GetBoolean();
                AddSplit(new Regex(individual ? @"\p{N}" : @"\p{N}+", RegexOptions.Compiled), Behavior.Isolated, invert: false);
                break;
            }
            default:
                throw new NotSupportedException($"tokenizer.json pre_tokenizer '{type}' is not supported");
        }
    }

    private void AddMetaspace(JsonElement e)
    {
        string replacement = e.TryGetProperty("replacement", out var r) ? r.GetString() ?? "▁" : "▁";
        string scheme = "always";
        if (e.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == JsonValueKind.String)
        {
            scheme = ps.GetString()!;
        }
        else if (e.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.False)
        {
            scheme = "never";
        }
        bool split = !e.TryGetProperty("split", out var sp) || sp.GetBoolean();
        _steps.Add(pieces =>
        {
            var output = new List<(string, bool)>();
            foreach (var (text, atStart) in pieces)
            {
                string t = text.Replace(" ", replacement, StringComparison.Ordinal);
                bool prepend = scheme == "always" || (scheme == "first" && atStart);
                if (prepend && !t.StartsWith(replacement, StringComparison.Ordinal))
                {
                    t = replacement + t;
                }
                if (!split)
                {
                    output.Add((t, atStart));
                    continue;
                }
                // MergedWithNext on the replacement char: each word starts with its ▁.
                int start = 0;
                for (int i = 1; i <= t.Length; i++)
                {
                    if (i == t.Length || string.CompareOrdinal(t, i, replacement, 0, replacement.Length) == 0)
                    {
                        if (i > start)
                        {
                            output.Add((t[start..i], atStart && start == 0));
                        }
                        start = i;
                    }
                }
            }
            return output;
        });
    }

    private void AddSplit(Regex regex, Behavior behavior, bool invert)
    {
        _steps.Add(pieces =>
        {
            var output = new List<(string, bool)>();
            var spans = new List<(int Start, int Length)>();
            foreach (var (text, atStart) in pieces)
            {
                spans.Clear();
                UnicodeRegexSplitter.Matches(regex, text, spans);
                SplitOne(text, atStart, spans, behavior, invert, output);
            }
            return output;
        });
    }

    private static void SplitOne(string text, bool atStart, List<(int Start, int Length)> spans, Behavior behavior, bool invert,
        List<(string, bool)> output)
    {
        if (behavior == Behavior.Isolated && !invert)
        {
            // The common case (every Split in GPT-2/Llama-3/Qwen files): matches and the gaps
            // between them are all pieces, so skip the segment bookkeeping below.
            int at = 0;
            foreach (var (start, length) in spans)
            {
                if (start > at)
                {
                    output.Add((text[at..start], atStart && at == 0));
                }
                output.Add((text.Substring(start, length), atStart && start == 0));
                at = start + length;
            }
            if (at < text.Length)
            {
                output.Add((text[at..], atStart && at == 0));
            }
            return;
        }

        // Alternate non-match / match segments over the whole text, as HF's split does.
        var segments = new List<(int Start, int End, bool IsMatch)>();
        int pos = 0;
        foreach (var (start, length) in spans)
        {
            if (start > pos)
            {
                segments.Add((pos, start, invert));
            }
            segments.Add((start, start + length, !invert));
            pos = start + length;
        }
        if (pos < text.Length)
        {
            segments.Add((pos, text.Length, invert));
        }

        var merged = new List<(int Start, int End)>();
        for (int i = 0; i < segments.Count; i++)
        {
            var (s, end, isMatch) = segments[i];
            switch (behavior)
            {
                case Behavior.Isolated:
                    merged.Add((s, end));
                    break;
                case Behavior.Removed:
                    if (!isMatch)
                    {
                        merged.Add((s, end));
                    }
                    break;
                case Behavior.MergedWithPrevious:
                    if (isMatch && merged.Count > 0 && !segments[i - 1].IsMatch)
                    {
                        merged[^1] = (merged[^1].Start, end);
                    }
                    else
                    {
                        merged.Add((s, end));
                    }
                    break;
                case Behavior.MergedWithNext:
                    if (!isMatch && i > 0 && segments[i - 1].IsMatch)
                    {
                        merged[^1] = (merged[^1].Start, end);
                    }
                    else
                    {
                        merged.Add((s, end));
                    }
                    break;
                case Behavior.Contiguous:
                    if (isMatch && i > 0 && segments[i - 1].IsMatch)
                    {
                        merged[^1] = (merged[^1].Start, end);
                    }
                    else
                    {
                        merged.Add((s, end));
                    }
                    break;
            }
        }
        foreach (var (s, end) in merged)
        {
            output.Add((text[s..end], atStart && s == 0));
        }
    }
}
