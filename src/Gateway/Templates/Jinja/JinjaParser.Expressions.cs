namespace Loom.Gateway.Templates;

internal sealed partial class JinjaParser
{
    private static readonly HashSet<string> CompareOps = ["==", "!=", "<", ">", "<=", ">="];

    private JinjaExpr ParseExpression()
    {
        var expr = ParseOr();
        while (Current.IsName("if"))
        {
            int line = Next().Line;
            var cond = ParseOr();
            JinjaExpr? otherwise = TryName("else") ? ParseOr() : null;
            expr = new ConditionalExpr(cond, expr, otherwise, line);
        }
        return expr;
    }

    /// <summary>A for loop's iterable: no conditional, because `if` there filters the loop.</summary>
    private JinjaExpr ParseConditionalNoTernary() => ParseOr();

    private JinjaExpr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            int line = Next().Line;
            left = new BinaryExpr("or", left, ParseAnd(), line);
        }
        return left;
    }

    private JinjaExpr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            int line = Next().Line;
            left = new BinaryExpr("and", left, ParseNot(), line);
        }
        return left;
    }

    private JinjaExpr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Next().Line;
            return new UnaryExpr("not", ParseNot(), line);
        }
        return ParseCompare();
    }

    private JinjaExpr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, JinjaExpr)>();
        while (true)
        {
            string op;
            if (Current.Kind == JinjaTokenKind.Operator && CompareOps.Contains(Current.Value))
            {
                op = Next().Value;
            }
            else if (TryName("in"))
            {
                op = "in";
            }
            else if (Current.IsName("not") && _tokens[_pos + 1].IsName("in"))
            {
                _pos += 2;
                op = "not in";
            }
            else
            {
                break;
            }
            rest.Add((op, ParseMath1()));
        }
        return rest.Count switch
        {
            0 => first,
            1 => new BinaryExpr(rest[0].Item1, first, rest[0].Item2, line),
            _ => new CompareChainExpr(first, rest, line),
        };
    }

    private JinjaExpr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.IsOp("+") || Current.IsOp("-"))
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParseConcat(), op.Line);
        }
        return left;
    }

    private JinjaExpr ParseConcat()
    {
        var left = ParseMath2();
        while (Current.IsOp("~"))
        {
            int line = Next().Line;
            left = new BinaryExpr("~", left, ParseMath2(), line);
        }
        return left;
    }

    private JinjaExpr ParseMath2()
    {
        var left = ParsePow();
        while (Current.IsOp("*") || Current.IsOp("/") || Current.IsOp("//") || Current.IsOp("%"))
        {
            var op = Next();
            left = new BinaryExpr(op.Value, left, ParsePow(), op.Line);
        }
        return left;
    }

    private JinjaExpr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (Current.IsOp("**"))
        {
            int line = Next().Line;
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), line);
        }
        return left;
    }

    private JinjaExpr ParseUnary(bool withFilter)
    {
        JinjaExpr node;
        if (Current.IsOp("-") || Current.IsOp("+"))
        {
            var op = Next();
            node = new UnaryExpr(op.Value, ParseUnary(withFilter: false), op.Line);
        }
        else
        {
            node = ParsePrimary();
        }
        node = ParsePostfix(node);
        return withFilter ? ParseFilterAndTests(node) : node;
    }

    private JinjaExpr ParseFilterAndTests(JinjaExpr node)
    {
        while (true)
        {
            if (TryOp("|"))
            {
                node = ParseFilterCall(node);
            }
            else if (Current.IsName("is"))
            {
                int line = Next().Line;
                bool negated = TryName("not");
                string name = ExpectName();
                var args = CallArgs.None;
                if (Current.IsOp("("))
                {
                    args = ParseCallArguments();
                }
                else if (CanStartTestArgument(Current))
                {
                    args = new CallArgs([ParsePostfix(ParsePrimary())], [], null, null);
                }
                node = new TestExpr(node, name, args, negated, line);
            }
            else
            {
                return node;
            }
        }
    }

    // Jinja takes `x is divisibleby 3` style arguments unless the next word continues the expression.
    private static bool CanStartTestArgument(JinjaToken t) => t.Kind switch
    {
        JinjaTokenKind.Name => t.Value is not ("else" or "or" or "and" or "if" or "is" or "in" or "not"),
        JinjaTokenKind.String or JinjaTokenKind.Integer or JinjaTokenKind.Float => true,
        JinjaTokenKind.Operator => t.Value is "[" or "{",
        _ => false,
    };

    private FilterExpr ParseFilterCall(JinjaExpr? target)
    {
        int line = Current.Line;
        string name = ExpectName();
        var args = Current.IsOp("(") ? ParseCallArguments() : CallArgs.None;
        return new FilterExpr(target, name, args, line);
    }

    /// <summary>Call arguments with Jinja2's ordering rules: positional arguments, then at most one
    /// <c>*iterable</c>, keyword arguments (which may follow <c>*</c>), then at most one <c>**mapping</c>.</summary>
    private CallArgs ParseCallArguments()
    {
        ExpectOp("(");
        var args = new List<JinjaExpr>();
        var kwargs = new List<(string, JinjaExpr)>();
        JinjaExpr? star = null, doubleStar = null;
        bool first = true;
        while (!TryOp(")"))
        {
            if (!first)
            {
                ExpectOp(",");
                if (TryOp(")"))
                {
                    break;
                }
            }
            first = false;
            if (TryOp("*"))
            {
                if (star is not null || doubleStar is not null)
                {
                    throw Error(star is not null ? "Only one *args unpacking is allowed in a call" : "*args unpacking must come before **kwargs");
                }
                star = ParseExpression();
            }
            else if (TryOp("**"))
            {
                if (doubleStar is not null)
                {
                    throw Error("Only one **kwargs unpacking is allowed in a call");
                }
                doubleStar = ParseExpression();
            }
            else if (Current.Kind == JinjaTokenKind.Name && _tokens[_pos + 1].IsOp("="))
            {
                if (doubleStar is not null)
                {
                    throw Error("Keyword argument after **kwargs unpacking");
                }
                string key = Next().Value;
                _pos++;
                kwargs.Add((key, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0 || star is not null || doubleStar is not null)
                {
                    throw Error(kwargs.Count > 0 ? "Positional argument after keyword argument" : "Positional argument after *args or **kwargs unpacking");
                }
                args.Add(ParseExpression());
            }
        }
        return new CallArgs(args, kwargs, star, doubleStar);
    }

    private JinjaExpr ParsePostfix(JinjaExpr node)
    {
        while (true)
        {
            int line = Current.Line;
            if (TryOp("."))
            {
                if (Current.Kind == JinjaTokenKind.Integer)
                {
                    node = new ItemExpr(node, new LiteralExpr(ParseNumber(Next()), line), line);
                }
                else
                {
                    node = new AttributeExpr(node, ExpectName(), line);
                }
            }
            else if (TryOp("["))
            {
                node = ParseSubscript(node, line);
            }
            else if (Current.IsOp("("))
            {
                node = new CallExpr(node, ParseCallArguments(), line);
            }
            else
            {
                return node;
            }
        }
    }

    private JinjaExpr ParseSubscript(JinjaExpr target, int line)
    {
        JinjaExpr? start = Current.IsOp(":") ? null : ParseExpression();
        if (TryOp("]"))
        {
            return new ItemExpr(target, start!, line);
        }
        ExpectOp(":");
        JinjaExpr? stop = Current.IsOp(":") || Current.IsOp("]") ? null : ParseExpression();
        JinjaExpr? step = null;
        if (TryOp(":") && !Current.IsOp("]"))
        {
            step = ParseExpression();
        }
        ExpectOp("]");
        return new SliceExpr(target, start, stop, step, line);
    }

    private JinjaExpr ParsePrimary()
    {
        var tok = Next();
        switch (tok.Kind)
        {
            case JinjaTokenKind.Name:
                return tok.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, tok.Line),
                    "false" or "False" => new LiteralExpr(false, tok.Line),
                    "none" or "None" => new LiteralExpr(null, tok.Line),
                    _ => new NameExpr(tok.Value, tok.Line),
                };
            case JinjaTokenKind.String:
                string s = tok.Value;
                while (Current.Kind == JinjaTokenKind.String)
                {
                    s += Next().Value; // adjacent literals concatenate, as in Python
                }
                return new LiteralExpr(s, tok.Line);
            case JinjaTokenKind.Integer or JinjaTokenKind.Float:
                return new LiteralExpr(ParseNumber(tok), tok.Line);
            case JinjaTokenKind.Operator when tok.Value == "(":
                if (TryOp(")"))
                {
                    return new ListExpr([], tok.Line);
                }
                var inner = ParseExpression();
                if (Current.IsOp(","))
                {
                    var items = new List<JinjaExpr> { inner };
                    while (TryOp(",") && !Current.IsOp(")"))
                    {
                        items.Add(ParseExpression());
                    }
                    inner = new ListExpr(items, tok.Line);
                }
                ExpectOp(")");
                return inner;
            case JinjaTokenKind.Operator when tok.Value == "[":
                var list = new List<JinjaExpr>();
                while (!TryOp("]"))
                {
                    if (list.Count > 0)
                    {
                        ExpectOp(",");
                        if (TryOp("]"))
                        {
                            break;
                        }
                    }
                    list.Add(ParseExpression());
                }
                return new ListExpr(list, tok.Line);
            case JinjaTokenKind.Operator when tok.Value == "{":
                var pairs = new List<(JinjaExpr, JinjaExpr)>();
                while (!TryOp("}"))
                {
                    if (pairs.Count > 0)
                    {
                        ExpectOp(",");
                        if (TryOp("}"))
                        {
                            break;
                        }
                    }
                    var key = ParseExpression();
                    ExpectOp(":");
                    pairs.Add((key, ParseExpression()));
                }
                return new DictExpr(pairs, tok.Line);
            default:
                _pos--;
                throw Error($"Unexpected {tok} in expression");
        }
    }
}
