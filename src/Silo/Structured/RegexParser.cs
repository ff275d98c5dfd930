using System.Globalization;

namespace Loom.Silo.Structured;

/// <summary>
/// A regular-expression subset (the part .NET, ECMAScript and Python agree on) to a
/// <see cref="Pattern"/> whose language is what the expression full-matches. Supported: literals,
/// escapes (\d \w \s and their negations as ASCII classes, \n \r \t \f \v \xHH \uHHHH, escaped
/// punctuation), <c>.</c> (any character but \n), classes with ranges and negation, groups
/// (capturing, <c>(?:…)</c>, named), alternation, and the quantifiers * + ? {n} {n,} {n,m} (lazy forms
/// match the same language). <c>^</c> at the start and <c>$</c> at the end are accepted (the match is
/// always whole). Anything else (backreferences, lookaround, \b, inline flags) is refused by name.
/// </summary>
public sealed class RegexParser
{
    private readonly string _s;
    private int _i;

    private RegexParser(string s) => _s = s;

    public static Pattern Parse(string regex)
    {
        var p = new RegexParser(regex);
        if (p.Peek('^')) p._i++;
        var result = p.ParseAlt();
        if (p._i < p._s.Length) throw p.Error($"unexpected '{p._s[p._i]}'");
        return result;
    }

    private bool Peek(char c) => _i < _s.Length && _s[_i] == c;

    private StructuredOutputException Error(string what, string? keyword = null) =>
        new($"regular expression '{_s}': {what} at position {_i}", keyword ?? "pattern");

    private Pattern ParseAlt()
    {
        var alts = new List<Pattern> { ParseSeq() };
        while (Peek('|')) { _i++; alts.Add(ParseSeq()); }
        return Pattern.Either([.. alts]);
    }

    private Pattern ParseSeq()
    {
        var items = new List<Pattern>();
        while (_i < _s.Length && !Peek('|') && !Peek(')'))
        {
            if (Peek('$') && _i == _s.Length - 1)
            {
                _i++;
                continue;
            }
            var atom = ParseAtom();
            items.Add(ParseQuantifier(atom));
        }
        return Pattern.Sequence([.. items]);
    }

    private Pattern ParseQuantifier(Pattern atom)
    {
        while (_i < _s.Length)
        {
            int min, max;
            char c = _s[_i];
            if (c == '*') { min = 0; max = -1; _i++; }
            else if (c == '+') { min = 1; max = -1; _i++; }
            else if (c == '?') { min = 0; max = 1; _i++; }
            else if (c == '{' && TryCount(out min, out max)) { }
            else break;
            if (Peek('?')) _i++; // lazy: same language
            else if (Peek('+')) throw Error("possessive quantifiers are not supported");
            atom = new Repeat(atom, min, max);
        }
        return atom;
    }

    private bool TryCount(out int min, out int max)
    {
        min = max = 0;
        int j = _s.IndexOf('}', _i);
        if (j < 0) return false;
        var body = _s.AsSpan(_i + 1, j - _i - 1);
        int comma = body.IndexOf(',');
        var inv = CultureInfo.InvariantCulture;
        if (comma < 0)
        {
            if (!int.TryParse(body, NumberStyles.None, inv, out min)) return false;
            max = min;
        }
        else
        {
            if (!int.TryParse(body[..comma], NumberStyles.None, inv, out min)) return false;
            var hi = body[(comma + 1)..];
            if (hi.Length == 0) max = -1;
            else if (!int.TryParse(hi, NumberStyles.None, inv, out max)) return false;
        }
        if (max >= 0 && max < min) throw Error($"bad repetition {{{min},{max}}}");
        if (Math.Max(min, max) > 10_000) throw Error("repetition counts above 10000 are not supported");
        _i = j + 1;
        return true;
    }

    private Pattern ParseAtom()
    {
        char c = _s[_i];
        switch (c)
        {
            case '(':
                _i++;
                if (Peek('?'))
                {
                    if (_i + 1 < _s.Length && _s[_i + 1] == ':') _i += 2;
                    else if (_i + 2 < _s.Length && (_s[_i + 1] == '<' || _s[_i + 1] == 'P' && _s[_i + 2] == '<') && _s[_i + 2] is not ('=' or '!'))
                    {
                        int close = _s.IndexOf('>', _i);
                        if (close < 0) throw Error("unterminated group name");
                        _i = close + 1;
                    }
                    else throw Error("lookaround and inline options are not supported", "lookaround");
                }
                var inner = ParseAlt();
                if (!Peek(')')) throw Error("missing ')'");
                _i++;
                return inner;
            case '[':
                return Pattern.Class(ParseClass());
            case '.':
                _i++;
                return Pattern.Class(CharSet.AllBut('\n'));
            case '\\':
                return ParseEscape(inClass: false, out var set) is { } single ? Pattern.Class(CharSet.Single(single)) : Pattern.Class(set!);
            case '^':
                throw Error("'^' is only supported at the start", "anchor");
            case '$':
                throw Error("'$' is only supported at the end", "anchor");
            case '*' or '+' or '?':
                throw Error("nothing to repeat");
            default:
                int cp = char.ConvertToUtf32(_s, _i);
                _i += char.IsSurrogatePair(_s, _i) ? 2 : 1;
                return Pattern.Class(CharSet.Single(cp));
        }
    }

    private CharSet ParseClass()
    {
        _i++; // [
        bool negate = Peek('^');
        if (negate) _i++;
        var set = new CharSet();
        bool first = true;
        while (_i < _s.Length && (!Peek(']') || first))
        {
            first = false;
            int lo;
            if (Peek('\\'))
            {
                if (ParseEscape(inClass: true, out var cls) is not { } single) { set.AddAll(cls!); continue; }
                lo = single;
            }
            else
            {
                lo = char.ConvertToUtf32(_s, _i);
                _i += char.IsSurrogatePair(_s, _i) ? 2 : 1;
            }
            if (Peek('-') && _i + 1 < _s.Length && _s[_i + 1] != ']')
            {
                _i++;
                int hi;
                if (Peek('\\'))
                {
                    if (ParseEscape(inClass: true, out _) is not { } h) throw Error("a class cannot end a range");
                    hi = h;
                }
                else
                {
                    hi = char.ConvertToUtf32(_s, _i);
                    _i += char.IsSurrogatePair(_s, _i) ? 2 : 1;
                }
                if (hi < lo) throw Error("range out of order");
                set.Add(lo, hi);
            }
            else set.Add(lo, lo);
        }
        if (!Peek(']')) throw Error("missing ']'");
        _i++;
        return negate ? set.Complement() : set;
    }

    /// <summary>Reads one escape: a single code point (returned) or a class (in <paramref name="set"/>).</summary>
    private int? ParseEscape(bool inClass, out CharSet? set)
    {
        set = null;
        _i++; // backslash
        if (_i >= _s.Length) throw Error("trailing backslash");
        char c = _s[_i++];
        switch (c)
        {
            case 'd': set = Digits(); return null;
            case 'D': set = Digits().Complement(); return null;
            case 'w': set = Word(); return null;
            case 'W': set = Word().Complement(); return null;
            case 's': set = Space(); return null;
            case 'S': set = Space().Complement(); return null;
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case 'f': return '\f';
            case 'v': return '\v';
            case '0': return 0;
            case 'x': return Hex(2);
            case 'u': return Hex(4);
            case 'b' when inClass: return '\b';
            case 'b' or 'B': throw Error("word boundaries are not supported", "\\b");
            default:
                if (char.IsAsciiLetterOrDigit(c)) throw Error($"the escape '\\{c}' is not supported", "\\" + c);
                return c;
        }
    }

    private int Hex(int digits)
    {
        if (_i + digits > _s.Length || !int.TryParse(_s.AsSpan(_i, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v))
            throw Error("bad hex escape");
        _i += digits;
        return v;
    }

    public static CharSet Digits() => CharSet.Of(('0', '9'));
    public static CharSet Word() => CharSet.Of(('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_'));
    public static CharSet Space() => CharSet.Of((' ', ' '), ('\t', '\r'));
}
