namespace Loom.Gateway.Templates;

/// <summary>A variable frame. For-loop iterations and macro calls get their own frame, so `set`
/// inside them does not leak out (Jinja's rule, and the reason templates use namespace()).</summary>
internal sealed class JinjaScope(JinjaScope? parent)
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);

    public object? Lookup(string name)
    {
        for (var s = this; s is not null; s = s.Parent)
        {
            if (s._vars.TryGetValue(name, out var v))
            {
                return v;
            }
        }
        return JinjaUndefined.Instance;
    }

    public JinjaScope? Parent { get; } = parent;

    public void Set(string name, object? value) => _vars[name] = value;
}
