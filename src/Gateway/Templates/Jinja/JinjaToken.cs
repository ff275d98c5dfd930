namespace Loom.Gateway.Templates;

internal enum JinjaTokenKind
{
    Text,
    VariableStart,
    VariableEnd,
    BlockStart,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One lexeme. Operators and punctuation share one kind; the parser matches on Value.</summary>
internal readonly record struct JinjaToken(JinjaTokenKind Kind, string Value, int Line)
{
    public bool Is(JinjaTokenKind kind, string value) => Kind == kind && Value == value;

    public bool IsOp(string value) => Kind == JinjaTokenKind.Operator && Value == value;

    public bool IsName(string value) => Kind == JinjaTokenKind.Name && Value == value;

    public override string ToString() => Kind == JinjaTokenKind.End ? "end of template" : $"'{Value}'";
}
