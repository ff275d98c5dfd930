using System.Text;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Structured;

/// <summary>A piece of a tool call as OpenAI streams it: the first carries id and name, later ones argument text.</summary>
public sealed record ToolCallPiece(int Index, string? Id, string? Name, string Arguments);

/// <summary>
/// Parses a model's output for tool calls incrementally, as text arrives. The non-streamed answer
/// is the same parser fed everything at once, so streamed argument fragments always concatenate
/// to the non-streamed arguments. The arguments are the model's own JSON text, cut where its value
/// ends (a small scanner tracks strings and nesting). Text that is not a call is content; whitespace
/// just before a call is dropped, and a call whose header never parses is given back as content.
/// </summary>
public sealed partial class ToolCallParser(ToolCallFormat format, Func<string>? newId = null)
{
    private enum Mode { Start, Content, Header, Args, Trailer, Done }

    private const string HermesOpen = "<tool_call>", HermesClose = "</tool_call>", MistralTag = "[TOOL_CALLS]";
    private readonly Func<string> _newId = newId ?? (() => "call_" + Guid.NewGuid().ToString("N")[..24]);
    private readonly StringBuilder _buf = new();
    private Mode _mode = Mode.Start;
    private string _marker = "";
    private int _calls, _depth;
    private bool _inString, _escape, _started;

    public int Calls => _calls;

    [GeneratedRegex("""^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*""")]
    private static partial Regex Header();

    public void Feed(string text, StringBuilder content, List<ToolCallPiece> calls)
    {
        _buf.Append(text);
        Run(content, calls, final: false);
    }

    public void Finish(StringBuilder content, List<ToolCallPiece> calls)
    {
        Run(content, calls, final: true);
        if (_mode is Mode.Header) { content.Append(_marker).Append(_buf); _buf.Clear(); }
        else if (_mode is Mode.Content or Mode.Start) { content.Append(_buf); _buf.Clear(); }
        _mode = Mode.Done;
    }

    private void Run(StringBuilder content, List<ToolCallPiece> calls, bool final)
    {
        while (true)
        {
            string s = _buf.ToString();
            switch (_mode)
            {
                case Mode.Start:
                {
                    // llama3_json and mistral: the output is calls only if it starts with one.
                    if (format == ToolCallFormat.Hermes) { _mode = Mode.Content; continue; }
                    string t = s.TrimStart();
                    if (t.StartsWith("<|python_tag|>", StringComparison.Ordinal)) t = t["<|python_tag|>".Length..].TrimStart();
                    if (t.Length == 0 || (!final && IsPrefix(t, format == ToolCallFormat.Mistral ? MistralTag : "<|python_tag|>"))) return;
                    if (format == ToolCallFormat.Llama3Json && t[0] == '{') { _buf.Clear().Append(t); _marker = ""; _mode = Mode.Header; continue; }
                    if (format == ToolCallFormat.Mistral && (t.StartsWith(MistralTag, StringComparison.Ordinal) || t.StartsWith("[{", StringComparison.Ordinal)))
                    {
                        if (t.StartsWith(MistralTag, StringComparison.Ordinal)) t = t[MistralTag.Length..].TrimStart();
                        if (t.Length == 0 && !final) { _buf.Clear(); return; }
                        if (t.StartsWith('[')) { _buf.Clear().Append(t[1..]); _marker = MistralTag + "["; _mode = Mode.Header; continue; }
                    }
                    _mode = Mode.Content;
                    continue;
                }
                case Mode.Content:
                {
                    if (format != ToolCallFormat.Hermes) { content.Append(s); _buf.Clear(); return; }
                    int at = s.IndexOf(HermesOpen, StringComparison.Ordinal);
                    if (at >= 0)
                    {
                        content.Append(s.AsSpan(0, at).TrimEnd());
                        _buf.Remove(0, at + HermesOpen.Length);
                        _marker = s.Substring(at, HermesOpen.Length);
                        _mode = Mode.Header;
                        continue;
                    }
                    // Hold back trailing whitespace, and a possible start of the opening tag with the whitespace before it.
                    int partial = PartialSuffix(s, HermesOpen);
                    int hold = s.Length - s[..^partial].TrimEnd().Length;
                    int emit = final ? s.Length : s.Length - hold;
                    content.Append(s.AsSpan(0, emit));
                    _buf.Remove(0, emit);
                    return;
                }
                case Mode.Header:
                {
                    var m = Header().Match(s);
                    if (!m.Success)
                    {
                        // Not a call after all: give it back as content (once it cannot still become one).
                        if (final || s.Length > 512 || Regex.IsMatch(s, """^\s*[^\s{]""")) { content.Append(_marker).Append(s); _buf.Clear(); _mode = Mode.Content; if (final) return; continue; }
                        return;
                    }
                    calls.Add(new ToolCallPiece(_calls, _newId(), Regex.Unescape(m.Groups[1].Value), ""));
                    _buf.Remove(0, m.Length);
                    _depth = 0; _inString = _escape = _started = false;
                    _mode = Mode.Args;
                    continue;
                }
                case Mode.Args:
                {
                    if (!_started)
                    {
                        // Whitespace before the value is not part of the arguments (it may arrive after the header).
                        int ws = s.Length - s.TrimStart().Length;
                        _buf.Remove(0, ws);
                        s = s[ws..];
                        if (s.Length == 0) return;
                    }
                    int end = ScanArguments(s);
                    int take = end < 0 ? s.Length : end;
                    if (take > 0) calls.Add(new ToolCallPiece(_calls, null, null, s[..take]));
                    _buf.Remove(0, take);
                    if (end < 0) return;
                    _calls++;
                    _mode = Mode.Trailer;
                    continue;
                }
                case Mode.Trailer:
                {
                    // Close the call object, then the separator to the next call or the end of the list.
                    var t = Trailer().Match(s);
                    if (!t.Success) { if (final || s.TrimStart().Length > 0 && s.TrimStart()[0] != '}') { _buf.Clear(); _mode = Mode.Done; } return; }
                    string rest = s[t.Length..];
                    if (format == ToolCallFormat.Hermes)
                    {
                        int close = rest.IndexOf(HermesClose, StringComparison.Ordinal);
                        if (close < 0) { if (final) { _buf.Clear(); _mode = Mode.Done; } return; }
                        _buf.Clear().Append(rest[(close + HermesClose.Length)..]);
                        _mode = Mode.Content;
                        continue;
                    }
                    string next = rest.TrimStart();
                    if (next.Length == 0) { if (final) { _buf.Clear(); _mode = Mode.Done; } return; }
                    _buf.Clear();
                    if (next[0] is ';' or ',') { _buf.Append(next[1..]); _marker = ""; _mode = Mode.Header; continue; }
                    _mode = Mode.Done; // ']' ends a Mistral list; anything else after the calls is dropped
                    return;
                }
                default:
                    _buf.Clear();
                    return;
            }
        }
    }

    [GeneratedRegex("""^\s*\}""")]
    private static partial Regex Trailer();

    /// <summary>How much of <paramref name="s"/> belongs to the arguments value; -1 while it has not ended.</summary>
    private int ScanArguments(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (_inString)
            {
                if (_escape) _escape = false;
                else if (c == '\\') _escape = true;
                else if (c == '"') { _inString = false; if (_depth == 0) return i + 1; }
                continue;
            }
            switch (c)
            {
                case '"': _inString = true; _started = true; break;
                case '{' or '[': _depth++; _started = true; break;
                case '}' or ']':
                    if (_depth == 0) return i; // a scalar (or nothing) ended at the call's closing brace
                    if (--_depth == 0) return i + 1;
                    break;
                case ',' when _depth == 0 && _started: return i;
                default: if (!char.IsWhiteSpace(c)) _started = true; break;
            }
        }
        return -1;
    }

    private static bool IsPrefix(string text, string tag) => text.Length < tag.Length && tag.StartsWith(text, StringComparison.Ordinal);

    /// <summary>The length of the longest suffix of <paramref name="s"/> that is a proper prefix of <paramref name="tag"/>.</summary>
    private static int PartialSuffix(string s, string tag)
    {
        for (int n = Math.Min(tag.Length - 1, s.Length); n > 0; n--)
            if (s.AsSpan(s.Length - n).SequenceEqual(tag.AsSpan(0, n))) return n;
        return 0;
    }
}
