using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Templates;

/// <summary>
/// Splits a template into text and tag tokens, applying whitespace control at lex time:
/// <c>-</c> modifiers, trim_blocks and lstrip_blocks (HF renders chat templates with both on),
/// and Jinja's default removal of one trailing newline.
/// </summary>
internal static partial class JinjaLexer
{
    private static readonly string[] Operators =
    [
        "//", "**", "==", "!=", "<=", ">=",
        "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|",
    ];

    [GeneratedRegex(@"\G\s*raw\s*(-?)%\}")]
    private static partial Regex RawStart();

    [GeneratedRegex(@"\{%(-?)\s*endraw\s*(-?)%\}")]
    private static partial Regex RawEnd();

    public static List<JinjaToken> Tokenize(string src, bool trimBlocks = true, bool lstripBlocks = true)
    {
        // Jinja2 turns every line break in text and string literals into "\n" (its newline_sequence),
        // so a template saved with CRLF line ends renders the same as one saved with LF.
        src = src.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (src.EndsWith('\n'))
        {
            src = src[..^1];
        }
        var tokens = new List<JinjaToken>();
        var text = new StringBuilder();
        int pos = 0;
        int line = 1;
        int linePos = 0;
        bool trimNextText = false;

        void FlushText()
        {
            if (text.Length > 0)
            {
                tokens.Add(new JinjaToken(JinjaTokenKind.Text, text.ToString(), line));
                text.Clear();
            }
        }

        while (pos < src.Length)
        {
            int open = FindTagOpen(src, pos);
            int textEnd = open < 0 ? src.Length : open;
            int textStart = pos;
            if (trimNextText)
            {
                while (textStart < textEnd && char.IsWhiteSpace(src[textStart]))
                {
                    textStart++;
                }
                trimNextText = false;
            }
            if (open < 0)
            {
                text.Append(src, textStart, textEnd - textStart);
                break;
            }
            char kind = src[open + 1];
            char modifier = open + 2 < src.Length ? src[open + 2] : '\0';
            int chunkEnd = textEnd;
            if (modifier == '-')
            {
                while (chunkEnd > textStart && char.IsWhiteSpace(src[chunkEnd - 1]))
                {
                    chunkEnd--;
                }
            }
            else if (lstripBlocks && modifier != '+' && kind != '{')
            {
                // Strip spaces/tabs only when they run back to the start of a line.
                int back = chunkEnd;
                while (back > textStart && (src[back - 1] == ' ' || src[back - 1] == '\t'))
                {
                    back--;
                }
                if (back == 0 || src[back - 1] == '\n')
                {
                    chunkEnd = back;
                }
            }
            text.Append(src, textStart, chunkEnd - textStart);
            // Tag line numbers come from the source position, so stripped whitespace cannot skew them.
            line += src.AsSpan(linePos, open - linePos).Count('\n');
            linePos = open;
            pos = open + 2 + (modifier is '-' or '+' ? 1 : 0);

            if (kind == '#')
            {
                int close = src.IndexOf("#}", pos, StringComparison.Ordinal);
                if (close < 0)
                {
                    throw new JinjaException("Unclosed comment", line);
                }
                bool dash = close > pos && src[close - 1] == '-';
                pos = close + 2;
                pos = AfterTagEnd(src, pos, dash, trimBlocks, ref trimNextText);
                continue;
            }

            FlushText();
            if (kind == '%')
            {
                var raw = RawStart().Match(src, pos);
                if (raw.Success)
                {
                    var end = RawEnd().Match(src, raw.Index + raw.Length);
                    if (!end.Success)
                    {
                        throw new JinjaException("Unclosed raw block", line);
                    }
                    int bodyStart = raw.Index + raw.Length;
                    string body = src[bodyStart..end.Index];
                    if (raw.Groups[1].Value == "-")
                    {
                        body = body.TrimStart();
                    }
                    else if (trimBlocks)
                    {
                        body = StripOneNewline(body);
                    }
                    if (end.Groups[1].Value == "-")
                    {
                        body = body.TrimEnd();
                    }
                    text.Append(body);
                    pos = AfterTagEnd(src, end.Index + end.Length, end.Groups[2].Value == "-", trimBlocks, ref trimNextText);
                    continue;
                }
            }
            bool isBlock = kind == '%';
            tokens.Add(new JinjaToken(isBlock ? JinjaTokenKind.BlockStart : JinjaTokenKind.VariableStart, isBlock ? "{%" : "{{", line));
            int tagLine = line;
            pos = LexTag(src, pos, isBlock, tokens, ref tagLine, out char endModifier);
            tokens.Add(new JinjaToken(isBlock ? JinjaTokenKind.BlockEnd : JinjaTokenKind.VariableEnd, isBlock ? "%}" : "}}", tagLine));
            // `+%}` keeps the newline trim_blocks would remove.
            pos = AfterTagEnd(src, pos, endModifier == '-', trimBlocks && isBlock && endModifier != '+', ref trimNextText);
        }
        FlushText();
        tokens.Add(new JinjaToken(JinjaTokenKind.End, "", line));
        return tokens;
    }

    private static string StripOneNewline(string s) =>
        s.StartsWith("\r\n", StringComparison.Ordinal) ? s[2..] : s.StartsWith('\n') ? s[1..] : s;

    private static int AfterTagEnd(string src, int pos, bool dash, bool trimNewline, ref bool trimNextText)
    {
        if (dash)
        {
            trimNextText = true;
        }
        else if (trimNewline)
        {
            if (pos < src.Length && src[pos] == '\n')
            {
                return pos + 1;
            }
            if (pos + 1 < src.Length && src[pos] == '\r' && src[pos + 1] == '\n')
            {
                return pos + 2;
            }
        }
        return pos;
    }

    private static int FindTagOpen(string src, int from)
    {
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
        {
            char c = src[i + 1];
            if (c is '{' or '%' or '#')
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>Lexes the inside of a {{ }} or {% %} tag; returns the position after its closer.
    /// A closer only counts outside brackets, so dict literals like {'a': {'b': 1}} work.</summary>
    private static int LexTag(string src, int pos, bool isBlock, List<JinjaToken> tokens, ref int line, out char endModifier)
    {
        int depth = 0;
        string closer = isBlock ? "%}" : "}}";
        while (true)
        {
            while (pos < src.Length && char.IsWhiteSpace(src[pos]))
            {
                if (src[pos] == '\n')
                {
                    line++;
                }
                pos++;
            }
            if (pos >= src.Length)
            {
                throw new JinjaException($"Unclosed tag: expected '{closer}'", line);
            }
            if (depth == 0)
            {
                if (string.CompareOrdinal(src, pos, closer, 0, 2) == 0)
                {
                    endModifier = '\0';
                    return pos + 2;
                }
                if ((src[pos] == '-' || (src[pos] == '+' && isBlock)) && string.CompareOrdinal(src, pos + 1, closer, 0, 2) == 0)
                {
                    endModifier = src[pos];
                    return pos + 3;
                }
            }
            char c = src[pos];
            if (char.IsLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < src.Length && (char.IsLetterOrDigit(src[pos]) || src[pos] == '_'))
                {
                    pos++;
                }
                tokens.Add(new JinjaToken(JinjaTokenKind.Name, src[start..pos], line));
            }
            else if (char.IsAsciiDigit(c))
            {
                pos = LexNumber(src, pos, tokens, line);
            }
            else if (c is '\'' or '"')
            {
                pos = LexString(src, pos, tokens, ref line);
            }
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(src, pos, o, 0, o.Length) == 0);
                if (op is null)
                {
                    throw new JinjaException($"Unexpected character '{c}'", line);
                }
                depth += op is "(" or "[" or "{" ? 1 : op is ")" or "]" or "}" ? -1 : 0;
                if (depth < 0)
                {
                    throw new JinjaException($"Unexpected '{op}'", line);
                }
                tokens.Add(new JinjaToken(JinjaTokenKind.Operator, op, line));
                pos += op.Length;
            }
        }
    }

    private static int LexNumber(string src, int pos, List<JinjaToken> tokens, int line)
    {
        int start = pos;
        bool isFloat = false;
        if (src[pos] == '0' && pos + 1 < src.Length && char.ToLowerInvariant(src[pos + 1]) is 'x' or 'o' or 'b')
        {
            return LexPrefixedInteger(src, pos, tokens, line);
        }
        while (pos < src.Length && (char.IsAsciiDigit(src[pos]) || src[pos] == '_'))
        {
            pos++;
        }
        if (pos + 1 < src.Length && src[pos] == '.' && char.IsAsciiDigit(src[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < src.Length && (char.IsAsciiDigit(src[pos]) || src[pos] == '_'))
            {
                pos++;
            }
        }
        if (pos < src.Length && src[pos] is 'e' or 'E')
        {
            int p = pos + 1;
            if (p < src.Length && src[p] is '+' or '-')
            {
                p++;
            }
            if (p < src.Length && char.IsAsciiDigit(src[p]))
            {
                isFloat = true;
                pos = p;
                while (pos < src.Length && char.IsAsciiDigit(src[pos]))
                {
                    pos++;
                }
            }
        }
        string digits = src[start..pos].Replace("_", "", StringComparison.Ordinal);
        tokens.Add(new JinjaToken(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Integer, digits, line));
        return pos;
    }

    /// <summary>Python's 0x1F, 0o17 and 0b101 literals (underscores allowed), emitted in decimal.</summary>
    private static int LexPrefixedInteger(string src, int pos, List<JinjaToken> tokens, int line)
    {
        int radix = char.ToLowerInvariant(src[pos + 1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
        pos += 2;
        System.Numerics.BigInteger value = 0;
        int digits = 0;
        while (pos < src.Length && (src[pos] == '_' || Uri.IsHexDigit(src[pos])))
        {
            if (src[pos] != '_')
            {
                int d = Convert.ToInt32(src[pos].ToString(), 16);
                if (d >= radix)
                {
                    break;
                }
                value = (value * radix) + d;
                digits++;
            }
            pos++;
        }
        if (digits == 0)
        {
            throw new JinjaException($"Invalid integer literal '{src[(pos - 2)..pos]}'", line);
        }
        tokens.Add(new JinjaToken(JinjaTokenKind.Integer, value.ToString(CultureInfo.InvariantCulture), line));
        return pos;
    }

    private static int LexString(string src, int pos, List<JinjaToken> tokens, ref int line)
    {
        char quote = src[pos];
        int startLine = line;
        var sb = new StringBuilder();
        pos++;
        while (true)
        {
            if (pos >= src.Length)
            {
                throw new JinjaException("Unterminated string literal", startLine);
            }
            char c = src[pos++];
            if (c == quote)
            {
                break;
            }
            if (c == '\n')
            {
                line++;
            }
            if (c != '\\' || pos >= src.Length)
            {
                sb.Append(c);
                continue;
            }
            char e = src[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'v': sb.Append('\v'); break;
                case '\n': line++; break;
                case 'x': pos = AppendHexEscape(src, pos, 2, sb, startLine); break;
                case 'u': pos = AppendHexEscape(src, pos, 4, sb, startLine); break;
                case 'U': pos = AppendHexEscape(src, pos, 8, sb, startLine); break;
                case >= '0' and <= '7':
                    // Python's octal escapes: one to three digits.
                    int code = e - '0';
                    for (int n = 1; n < 3 && pos < src.Length && src[pos] is >= '0' and <= '7'; n++)
                    {
                        code = (code * 8) + (src[pos++] - '0');
                    }
                    sb.Append((char)code);
                    break;
                case 'N' when pos < src.Length && src[pos] == '{':
                    // Python looks the name up in the Unicode database, which .NET does not ship.
                    throw new JinjaException("\\N{...} escapes are not supported; write the character itself or \\uXXXX", startLine);
                default:
                    // Python keeps unknown escapes verbatim, backslash included.
                    sb.Append('\\').Append(e);
                    break;
            }
        }
        tokens.Add(new JinjaToken(JinjaTokenKind.String, sb.ToString(), startLine));
        return pos;
    }

    // \xXX, \uXXXX and \UXXXXXXXX take exactly that many hex digits, as in Python.
    private static int AppendHexEscape(string src, int pos, int digits, StringBuilder sb, int line)
    {
        if (pos + digits > src.Length || !int.TryParse(src.AsSpan(pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
            || code < 0 || code > 0x10FFFF)
        {
            throw new JinjaException($"Truncated or invalid \\{(digits == 2 ? 'x' : digits == 4 ? 'u' : 'U')} escape in a string literal", line);
        }
        if (code > 0xFFFF)
        {
            sb.Append(char.ConvertFromUtf32(code));
        }
        else
        {
            sb.Append((char)code);
        }
        return pos + digits;
    }
}
