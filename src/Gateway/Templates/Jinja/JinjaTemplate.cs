namespace Loom.Gateway.Templates;

/// <summary>A parsed Jinja template: parse once (the AST is immutable), render many times, concurrently.</summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<JinjaNode> _nodes;

    /// <summary>Parses with trim_blocks and lstrip_blocks on, as transformers does for chat templates.</summary>
    /// <exception cref="JinjaException">The template has a syntax error.</exception>
    public JinjaTemplate(string source)
    {
        _nodes = JinjaParser.Parse(source);
    }

    /// <summary>Renders with variables given as CLR values (string, bool, numbers, JsonElement,
    /// dictionaries, lists). Unknown names are Undefined. <paramref name="clock"/> feeds strftime_now.</summary>
    /// <exception cref="JinjaException">Rendering failed (type error, raise_exception, ...).</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? clock = null)
    {
        var globals = new JinjaScope(null);
        JinjaGlobals.AddTo(globals, clock ?? (() => DateTime.Now));
        var scope = new JinjaScope(globals);
        foreach (var (name, value) in variables)
        {
            scope.Set(name, JinjaValues.FromClr(value));
        }
        try
        {
            return JinjaInterpreter.Render(_nodes, scope);
        }
        catch (Exception e) when (e is InvalidCastException or ArgumentException or IndexOutOfRangeException or OverflowException or FormatException)
        {
            // A type mismatch the checks above missed is still the template's fault, not the server's.
            throw new JinjaException("Template error: " + e.Message, 0, e);
        }
    }
}
