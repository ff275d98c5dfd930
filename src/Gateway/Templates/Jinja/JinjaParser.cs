using System.Globalization;

namespace Loom.Gateway.Templates;

/// <summary>Recursive-descent parser for the statement and expression subset chat templates use.
/// Expression precedence follows Jinja: conditional, or, and, not, comparisons (in, is),
/// ~, + -, * / // %, **, unary, then postfix (call, attribute, item, slice) and filters/tests.</summary>
internal sealed partial class JinjaParser
{
    private readonly List<JinjaToken> _tokens;
    private int _pos;

    private JinjaParser(List<JinjaToken> tokens) => _tokens = tokens;

    public static IReadOnlyList<JinjaNode> Parse(string template)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(template));
        var body = parser.ParseBody([], out _);
        return body;
    }

    private JinjaToken Current => _tokens[_pos];

    private JinjaToken Next() => _tokens[_pos++];

    private JinjaException Error(string message) => new(message, Current.Line);

    private void ExpectOp(string op)
    {
        if (!Current.IsOp(op))
        {
            throw Error($"Expected '{op}' but found {Current}");
        }
        _pos++;
    }

    private string ExpectName()
    {
        if (Current.Kind != JinjaTokenKind.Name)
        {
            throw Error($"Expected a name but found {Current}");
        }
        return Next().Value;
    }

    private void ExpectBlockEnd()
    {
        if (Current.Kind != JinjaTokenKind.BlockEnd)
        {
            throw Error($"Expected end of block tag '%}}' but found {Current}");
        }
        _pos++;
    }

    private bool TryOp(string op)
    {
        if (Current.IsOp(op))
        {
            _pos++;
            return true;
        }
        return false;
    }

    private bool TryName(string name)
    {
        if (Current.IsName(name))
        {
            _pos++;
            return true;
        }
        return false;
    }

    /// <summary>Parses nodes until a block tag whose keyword is one of <paramref name="terminators"/>;
    /// that keyword is consumed and returned, the rest of its tag is left to the caller.</summary>
    private List<JinjaNode> ParseBody(string[] terminators, out string terminator)
    {
        var nodes = new List<JinjaNode>();
        while (true)
        {
            var tok = Current;
            switch (tok.Kind)
            {
                case JinjaTokenKind.End:
                    if (terminators.Length > 0)
                    {
                        throw Error($"Unexpected end of template: expected {string.Join(" or ", terminators.Select(t => $"'{{% {t} %}}'"))}");
                    }
                    terminator = "";
                    return nodes;
                case JinjaTokenKind.Text:
                    _pos++;
                    nodes.Add(new TextNode(tok.Value, tok.Line));
                    break;
                case JinjaTokenKind.VariableStart:
                    _pos++;
                    var expr = ParseExpression();
                    if (Current.Kind != JinjaTokenKind.VariableEnd)
                    {
                        throw Error($"Expected '}}}}' but found {Current}");
                    }
                    _pos++;
                    nodes.Add(new OutputNode(expr, tok.Line));
                    break;
                case JinjaTokenKind.BlockStart:
                    _pos++;
                    var keyword = Current;
                    if (keyword.Kind == JinjaTokenKind.Name && terminators.Contains(keyword.Value))
                    {
                        _pos++;
                        terminator = keyword.Value;
                        return nodes;
                    }
                    var node = ParseStatement();
                    if (node is not null)
                    {
                        nodes.Add(node);
                    }
                    break;
                default:
                    throw Error($"Unexpected {tok}");
            }
        }
    }

    private JinjaNode? ParseStatement()
    {
        var tok = Current;
        string keyword = ExpectName();
        switch (keyword)
        {
            case "if": return ParseIf(tok.Line);
            case "for": return ParseFor(tok.Line);
            case "set": return ParseSet(tok.Line);
            case "with": return ParseWith(tok.Line);
            case "macro": return ParseMacro(tok.Line);
            case "call": return ParseCallBlock(tok.Line);
            case "filter": return ParseFilterBlock(tok.Line);
            case "break":
                ExpectBlockEnd();
                return new BreakNode(tok.Line);
            case "continue":
                ExpectBlockEnd();
                return new ContinueNode(tok.Line);
            case "generation" or "endgeneration":
                // transformers' assistant-mask marker: it renders nothing.
                ExpectBlockEnd();
                return null;
            default:
                throw new JinjaException(keyword switch
                {
                    "include" or "import" or "from" or "extends" or "block" =>
                        $"'{{% {keyword} %}}' needs other templates; a chat template is rendered on its own",
                    "do" or "trans" or "pluralize" =>
                        $"'{{% {keyword} %}}' comes from a Jinja2 extension that transformers does not enable",
                    "autoescape" => "'{% autoescape %}' is not supported: chat templates render without HTML escaping",
                    _ => $"Unknown or unexpected tag '{keyword}'",
                }, tok.Line);
        }
    }

    private IfNode ParseIf(int line)
    {
        var branches = new List<(JinjaExpr, IReadOnlyList<JinjaNode>)>();
        List<JinjaNode>? elseBody = null;
        var cond = ParseExpression();
        ExpectBlockEnd();
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"], out string end);
            branches.Add((cond, body));
            if (end == "elif")
            {
                cond = ParseExpression();
                ExpectBlockEnd();
                continue;
            }
            ExpectBlockEnd();
            if (end == "else")
            {
                elseBody = ParseBody(["endif"], out _);
                ExpectBlockEnd();
            }
            return new IfNode(branches, elseBody, line);
        }
    }

    private ForNode ParseFor(int line)
    {
        var target = ParseTarget();
        if (!TryName("in"))
        {
            throw Error($"Expected 'in' in for loop but found {Current}");
        }
        var iterable = ParseConditionalNoTernary();
        JinjaExpr? filter = null;
        if (TryName("if"))
        {
            filter = ParseOr();
        }
        if (TryName("recursive"))
        {
            throw new JinjaException("Recursive for loops are not supported", line);
        }
        ExpectBlockEnd();
        var body = ParseBody(["else", "endfor"], out string end);
        ExpectBlockEnd();
        List<JinjaNode>? elseBody = null;
        if (end == "else")
        {
            elseBody = ParseBody(["endfor"], out _);
            ExpectBlockEnd();
        }
        return new ForNode(target, iterable, filter, body, elseBody, line);
    }

    /// <summary>An assignment target as Jinja2 reads one: names separated by commas, with
    /// parentheses for nesting (<c>k, v</c>, <c>(a, b)</c>, <c>a, (b, c)</c>, <c>(a,)</c>).</summary>
    private JinjaTarget ParseTarget()
    {
        var first = ParseTargetAtom();
        if (!Current.IsOp(","))
        {
            return first;
        }
        var items = new List<JinjaTarget> { first };
        while (TryOp(",") && ((Current.Kind == JinjaTokenKind.Name && !Current.IsName("in")) || Current.IsOp("(")))
        {
            items.Add(ParseTargetAtom());
        }
        return new TupleTarget(items);
    }

    private JinjaTarget ParseTargetAtom()
    {
        if (!TryOp("("))
        {
            return new NameTarget(ExpectName());
        }
        var inner = ParseTarget();
        ExpectOp(")");
        return inner;
    }

    private JinjaNode ParseSet(int line)
    {
        if (Current.Kind == JinjaTokenKind.Name && _tokens[_pos + 1].IsOp("."))
        {
            string ns = Next().Value;
            _pos++;
            string attr = ExpectName();
            ExpectOp("=");
            var v = ParseTupleOrExpression();
            ExpectBlockEnd();
            return new SetNode(new NameTarget(attr), ns, v, line);
        }
        var target = ParseTarget();
        if (TryOp("="))
        {
            var value = ParseTupleOrExpression();
            ExpectBlockEnd();
            return new SetNode(target, null, value, line);
        }
        if (target is not NameTarget { Name: var first })
        {
            throw Error("Block set takes a single name");
        }
        var filters = new List<FilterExpr>();
        while (TryOp("|"))
        {
            filters.Add(ParseFilterCall(null));
        }
        ExpectBlockEnd();
        var body = ParseBody(["endset"], out _);
        ExpectBlockEnd();
        return new BlockSetNode(first, filters, body, line);
    }

    private WithNode ParseWith(int line)
    {
        var bindings = new List<(JinjaTarget, JinjaExpr)>();
        while (Current.Kind != JinjaTokenKind.BlockEnd)
        {
            if (bindings.Count > 0)
            {
                ExpectOp(",");
            }
            var target = ParseTarget();
            ExpectOp("=");
            bindings.Add((target, ParseExpression()));
        }
        ExpectBlockEnd();
        var body = ParseBody(["endwith"], out _);
        ExpectBlockEnd();
        return new WithNode(bindings, body, line);
    }

    private MacroNode ParseMacro(int line)
    {
        string name = ExpectName();
        var parameters = ParseParameters();
        ExpectBlockEnd();
        var body = ParseBody(["endmacro"], out _);
        if (Current.Kind == JinjaTokenKind.Name)
        {
            _pos++; // {% endmacro name %}
        }
        ExpectBlockEnd();
        return new MacroNode(name, parameters, body, line);
    }

    private List<(string, JinjaExpr?)> ParseParameters()
    {
        var parameters = new List<(string, JinjaExpr?)>();
        if (!TryOp("("))
        {
            return parameters;
        }
        while (!TryOp(")"))
        {
            if (parameters.Count > 0)
            {
                ExpectOp(",");
                if (TryOp(")"))
                {
                    break;
                }
            }
            if (Current.IsOp("*") || Current.IsOp("**"))
            {
                // Jinja2 macros take no starred parameters; extra arguments land in varargs/kwargs.
                throw Error($"Macro parameters cannot start with '{Current.Value}': extra arguments are in 'varargs' and 'kwargs'");
            }
            string p = ExpectName();
            parameters.Add((p, TryOp("=") ? ParseExpression() : null));
        }
        return parameters;
    }

    private CallBlockNode ParseCallBlock(int line)
    {
        var callerParams = Current.IsOp("(") ? ParseParameters() : [];
        var call = ParsePostfix(ParsePrimary()) as CallExpr ?? throw Error("Expected a macro call after 'call'");
        ExpectBlockEnd();
        var body = ParseBody(["endcall"], out _);
        ExpectBlockEnd();
        return new CallBlockNode(call, callerParams, body, line);
    }

    private FilterBlockNode ParseFilterBlock(int line)
    {
        var filters = new List<FilterExpr> { ParseFilterCall(null) };
        while (TryOp("|"))
        {
            filters.Add(ParseFilterCall(null));
        }
        ExpectBlockEnd();
        var body = ParseBody(["endfilter"], out _);
        ExpectBlockEnd();
        return new FilterBlockNode(filters, body, line);
    }

    /// <summary>`set x = a, b` builds a tuple (a list here).</summary>
    private JinjaExpr ParseTupleOrExpression()
    {
        int line = Current.Line;
        var first = ParseExpression();
        if (!Current.IsOp(","))
        {
            return first;
        }
        var items = new List<JinjaExpr> { first };
        while (TryOp(","))
        {
            items.Add(ParseExpression());
        }
        return new ListExpr(items, line);
    }

    // Python ints are unbounded; Loom's are 64-bit, so a larger literal is refused rather than wrapped.
    // The casts keep ints ints: a bare ?: would widen the long arm to double.
    private static object ParseNumber(JinjaToken tok) => tok.Kind != JinjaTokenKind.Integer
        ? (object)double.Parse(tok.Value, CultureInfo.InvariantCulture)
        : long.TryParse(tok.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long l) ? (object)l
        : throw new JinjaException($"Integer literal {tok.Value} does not fit in 64 bits", tok.Line);
}
