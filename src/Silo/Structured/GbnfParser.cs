using System.Globalization;
using System.Text;

namespace Loom.Silo.Structured;

/// <summary>
/// GBNF, llama.cpp's grammar format, to a <see cref="Grammar"/>: <c>name ::= alternatives</c> rules
/// (the output must match <c>root</c>), "literals" and [classes] with \n \r \t \\ \" \xHH \uHHHH
/// \UHHHHHHHH escapes, <c>.</c> (any character), rule references, ( groups ), | and the quantifiers
/// * + ? {m} {m,} {m,n}, # comments. A rule ends at a newline outside parentheses unless the next
/// line continues it with '|'. Recursive rules nest up to <see cref="ByteNfa.MaxRecursion"/> deep.
/// </summary>
public sealed class GbnfParser
{
    private readonly string _s;
    private int _i;
    private readonly Grammar _g = new("root");

    private GbnfParser(string s) => _s = s;

    public static Grammar Parse(string text)
    {
        var p = new GbnfParser(text);
        p.ParseRules();
        if (!p._g.Rules.ContainsKey("root")) throw new StructuredOutputException("the grammar has no 'root' rule", "root");
        foreach (var (name, body) in p._g.Rules) p.CheckRefs(body, name);
        return p._g;
    }

    private StructuredOutputException Error(string what) =>
        new($"grammar: {what} at line {_s[..Math.Min(_i, _s.Length)].Count(c => c == '\n') + 1}", "grammar");


    private void CheckRefs(Pattern p, string rule)
    {
        switch (p)
        {
            case RuleRef r when !_g.Rules.ContainsKey(r.Name):
                throw new StructuredOutputException($"grammar: rule '{rule}' refers to '{r.Name}', which is not defined", r.Name);
            case Seq s: foreach (var x in s.Items) CheckRefs(x, rule); break;
            case Alt a: foreach (var x in a.Items) CheckRefs(x, rule); break;
            case Repeat r: CheckRefs(r.Item, rule); break;
        }
    }

    private void SkipSpace(bool newlines)
    {
        while (_i < _s.Length)
        {
            char c = _s[_i];
            if (c == '#') { while (_i < _s.Length && _s[_i] != '\n') _i++; }
            else if (c is ' ' or '\t' || (newlines && c is '\n' or '\r')) _i++;
            else break;
        }
    }

    private void ParseRules()
    {
        while (true)
        {
            SkipSpace(newlines: true);
            if (_i >= _s.Length) return;
            string name = Name();
            SkipSpace(false);
            if (!_s.AsSpan(_i).StartsWith("::=")) throw Error($"expected '::=' after '{name}'");
            _i += 3;
            SkipSpace(newlines: true);
            var body = Alternatives(nested: false);
            if (!_g.Rules.TryAdd(name, body)) throw Error($"rule '{name}' is defined twice");
        }
    }

    private string Name()
    {
        int start = _i;
        while (_i < _s.Length && (char.IsAsciiLetterOrDigit(_s[_i]) || _s[_i] is '-' or '_')) _i++;
        if (_i == start) throw Error($"expected a rule name, found '{(_i < _s.Length ? _s[_i] : ' ')}'");
        return _s[start.._i];
    }

    private Pattern Alternatives(bool nested)
    {
        var alts = new List<Pattern> { Sequence(nested) };
        while (true)
        {
            int save = _i;
            SkipSpace(newlines: true);
            if (_i < _s.Length && _s[_i] == '|')
            {
                _i++;
                SkipSpace(newlines: true);
                alts.Add(Sequence(nested));
            }
            else { _i = save; break; }
        }
        return Pattern.Either([.. alts]);
    }

    private Pattern Sequence(bool nested)
    {
        var items = new List<Pattern>();
        while (true)
        {
            SkipSpace(newlines: nested);
            if (_i >= _s.Length) break;
            char c = _s[_i];
            if (c is '|' or ')' or '\n' or '\r') break;
            // A name followed by ::= starts the next rule.
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            {
                int save = _i;
                Name();
                SkipSpace(false);
                bool rule = _s.AsSpan(_i).StartsWith("::=");
                _i = save;
                if (rule) break;
            }
            items.Add(Quantified(Atom()));
        }
        return Pattern.Sequence([.. items]);
    }

    private Pattern Atom()
    {
        char c = _s[_i];
        if (c == '"')
        {
            _i++;
            var sb = new StringBuilder();
            while (_i < _s.Length && _s[_i] != '"') sb.Append(char.ConvertFromUtf32(Char()));
            if (_i >= _s.Length) throw Error("unterminated literal");
            _i++;
            return Pattern.Text(sb.ToString());
        }
        if (c == '[')
        {
            _i++;
            bool negate = _i < _s.Length && _s[_i] == '^';
            if (negate) _i++;
            var set = new CharSet();
            while (_i < _s.Length && _s[_i] != ']')
            {
                int lo = Char();
                if (_i + 1 < _s.Length && _s[_i] == '-' && _s[_i + 1] != ']') { _i++; set.Add(lo, Char()); }
                else set.Add(lo, lo);
            }
            if (_i >= _s.Length) throw Error("unterminated character class");
            _i++;
            return Pattern.Class(negate ? set.Complement() : set);
        }
        if (c == '.') { _i++; return Pattern.Class(CharSet.AllBut()); }
        if (c == '(')
        {
            _i++;
            SkipSpace(true);
            var inner = Alternatives(nested: true);
            SkipSpace(true);
            if (_i >= _s.Length || _s[_i] != ')') throw Error("missing ')'");
            _i++;
            return inner;
        }
        return new RuleRef(Name());
    }

    private int Char()
    {
        if (_s[_i] != '\\')
        {
            int cp = char.ConvertToUtf32(_s, _i);
            _i += char.IsSurrogatePair(_s, _i) ? 2 : 1;
            return cp;
        }
        _i++;
        if (_i >= _s.Length) throw Error("trailing backslash");
        char e = _s[_i++];
        return e switch
        {
            'n' => '\n', 'r' => '\r', 't' => '\t', '0' => 0,
            'x' => Hex(2), 'u' => Hex(4), 'U' => Hex(8),
            _ => e,
        };
    }

    private int Hex(int n)
    {
        if (_i + n > _s.Length || !int.TryParse(_s.AsSpan(_i, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v)) throw Error("bad hex escape");
        _i += n;
        return v;
    }

    private Pattern Quantified(Pattern atom)
    {
        while (_i < _s.Length)
        {
            char c = _s[_i];
            if (c == '*') { _i++; atom = new Repeat(atom, 0, -1); }
            else if (c == '+') { _i++; atom = new Repeat(atom, 1, -1); }
            else if (c == '?') { _i++; atom = new Repeat(atom, 0, 1); }
            else if (c == '{')
            {
                int close = _s.IndexOf('}', _i);
                if (close < 0) throw Error("unterminated {m,n}");
                var parts = _s[(_i + 1)..close].Split(',');
                var inv = CultureInfo.InvariantCulture;
                if (!int.TryParse(parts[0].Trim(), NumberStyles.None, inv, out int min)) throw Error("bad repetition");
                int max = parts.Length == 1 ? min : parts[1].Trim().Length == 0 ? -1
                    : int.TryParse(parts[1].Trim(), NumberStyles.None, inv, out int m) ? m : throw Error("bad repetition");
                if (Math.Max(min, max) > 10_000 || (max >= 0 && max < min)) throw Error("bad repetition");
                _i = close + 1;
                atom = new Repeat(atom, min, max);
            }
            else break;
        }
        return atom;
    }
}
