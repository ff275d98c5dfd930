namespace Loom.Gateway.Templates;

/// <summary>
/// markupsafe's Markup: text already safe for HTML, made by the <c>safe</c> and <c>escape</c>
/// filters. transformers renders without autoescaping, so Markup prints as it is, but Python's
/// <c>Markup + str</c> (either order) HTML-escapes the plain side. meetkai functionary v3.1 writes
/// <c>"'\n"|safe + t | tojson()</c>, so its tool JSON reaches the prompt as <c>{&amp;#34;name&amp;#34;: ...}</c>.
/// Everywhere else a Markup acts as its plain string (and loses its markedness, where Python's
/// str methods would keep it; no published template relies on that).
/// </summary>
internal sealed class JinjaMarkup(string value)
{
    public string Value { get; } = value;

    public override string ToString() => Value;

    /// <summary>The value with Markup unwrapped to its string; anything else unchanged.</summary>
    public static object? Plain(object? v) => v is JinjaMarkup m ? m.Value : v;

    /// <summary>Replaces Markup arguments by their strings in place (the lists are per call).</summary>
    public static void Unwrap(List<object?> args, JinjaDict kwargs)
    {
        for (int i = 0; i < args.Count; i++)
        {
            args[i] = Plain(args[i]);
        }
        for (int i = 0; i < kwargs.Count; i++)
        {
            if (kwargs.GetAt(i).Value is JinjaMarkup m)
            {
                kwargs.SetAt(i, m.Value);
            }
        }
    }

    /// <summary>markupsafe.escape for a plain string.</summary>
    public static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);

    /// <summary><c>a + b</c> where one side is Markup: the other side is escaped unless it is Markup too.</summary>
    public static JinjaMarkup Concat(object? a, object? b) => new(EscapeUnlessMarkup(a) + EscapeUnlessMarkup(b));

    private static string EscapeUnlessMarkup(object? v) => v is JinjaMarkup m ? m.Value : Escape(JinjaValues.ToStr(v));
}
