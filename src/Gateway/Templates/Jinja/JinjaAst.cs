namespace Loom.Gateway.Templates;

// The syntax tree. Nodes are immutable so one parsed template can be rendered concurrently.

internal abstract record JinjaNode(int Line);

internal sealed record TextNode(string Text, int Line) : JinjaNode(Line);

internal sealed record OutputNode(JinjaExpr Expr, int Line) : JinjaNode(Line);

internal sealed record IfNode(IReadOnlyList<(JinjaExpr Condition, IReadOnlyList<JinjaNode> Body)> Branches, IReadOnlyList<JinjaNode>? Else, int Line) : JinjaNode(Line);

/// <summary>What a for loop, set or with binds: a name, or a tuple of targets that unpacks an
/// iterable (<c>k, v</c>, <c>(a, b)</c>, <c>a, (b, c)</c>).</summary>
internal abstract record JinjaTarget;

internal sealed record NameTarget(string Name) : JinjaTarget;

internal sealed record TupleTarget(IReadOnlyList<JinjaTarget> Items) : JinjaTarget;

internal sealed record ForNode(JinjaTarget Target, JinjaExpr Iterable, JinjaExpr? Filter, IReadOnlyList<JinjaNode> Body, IReadOnlyList<JinjaNode>? Else, int Line) : JinjaNode(Line);

/// <summary>{% set a = x %}, {% set a, b = x %} or {% set ns.attr = x %} (Namespace is then "ns"
/// and Target the attribute).</summary>
internal sealed record SetNode(JinjaTarget Target, string? Namespace, JinjaExpr Value, int Line) : JinjaNode(Line);

/// <summary>{% with a = x, b = y %}...{% endwith %}: values are evaluated outside, bound inside.</summary>
internal sealed record WithNode(IReadOnlyList<(JinjaTarget Target, JinjaExpr Value)> Bindings, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

/// <summary>{% set name %}...{% endset %}, optionally piped through filters.</summary>
internal sealed record BlockSetNode(string Target, IReadOnlyList<FilterExpr> Filters, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, JinjaExpr? Default)> Parameters, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

internal sealed record CallBlockNode(CallExpr Call, IReadOnlyList<(string Name, JinjaExpr? Default)> CallerParameters, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

internal sealed record FilterBlockNode(IReadOnlyList<FilterExpr> Filters, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

internal sealed record BreakNode(int Line) : JinjaNode(Line);

internal sealed record ContinueNode(int Line) : JinjaNode(Line);

internal abstract record JinjaExpr(int Line);

internal sealed record LiteralExpr(object? Value, int Line) : JinjaExpr(Line);

internal sealed record NameExpr(string Name, int Line) : JinjaExpr(Line);

internal sealed record ListExpr(IReadOnlyList<JinjaExpr> Items, int Line) : JinjaExpr(Line);

internal sealed record DictExpr(IReadOnlyList<(JinjaExpr Key, JinjaExpr Value)> Items, int Line) : JinjaExpr(Line);

internal sealed record AttributeExpr(JinjaExpr Target, string Name, int Line) : JinjaExpr(Line);

internal sealed record ItemExpr(JinjaExpr Target, JinjaExpr Key, int Line) : JinjaExpr(Line);

internal sealed record SliceExpr(JinjaExpr Target, JinjaExpr? Start, JinjaExpr? Stop, JinjaExpr? Step, int Line) : JinjaExpr(Line);

/// <summary>The arguments at a call site, as Jinja2 parses them: <c>f(a, b, *rest, k=v, **more)</c>.
/// <paramref name="Star"/> and <paramref name="DoubleStar"/> are Python's argument unpacking
/// (AI21 Jamba's template calls <c>macros_to_call[i](*params_for_macros[i])</c>).</summary>
internal sealed record CallArgs(IReadOnlyList<JinjaExpr> Positional, IReadOnlyList<(string Name, JinjaExpr Value)> Keywords, JinjaExpr? Star, JinjaExpr? DoubleStar)
{
    public static readonly CallArgs None = new([], [], null, null);
}

internal sealed record CallExpr(JinjaExpr Callee, CallArgs Args, int Line) : JinjaExpr(Line);

internal sealed record FilterExpr(JinjaExpr? Target, string Name, CallArgs Args, int Line) : JinjaExpr(Line);

internal sealed record TestExpr(JinjaExpr Target, string Name, CallArgs Args, bool Negated, int Line) : JinjaExpr(Line);

internal sealed record UnaryExpr(string Op, JinjaExpr Operand, int Line) : JinjaExpr(Line);

internal sealed record BinaryExpr(string Op, JinjaExpr Left, JinjaExpr Right, int Line) : JinjaExpr(Line);

/// <summary>A chain like <c>a &lt; b &lt;= c</c>, which Jinja2 (like Python) reads as
/// <c>a &lt; b and b &lt;= c</c> with b evaluated once. A single comparison is a BinaryExpr.</summary>
internal sealed record CompareChainExpr(JinjaExpr First, IReadOnlyList<(string Op, JinjaExpr Operand)> Rest, int Line) : JinjaExpr(Line);

internal sealed record ConditionalExpr(JinjaExpr Condition, JinjaExpr Then, JinjaExpr? Else, int Line) : JinjaExpr(Line);
