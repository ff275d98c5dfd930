namespace Loom.Gateway.Templates;

/// <summary>A template that does not parse or fails while rendering (including raise_exception).
/// Carries the template line when known so a 400 response can point at the problem.</summary>
public sealed class JinjaException : Exception
{
    public JinjaException(string message, int line = 0, Exception? inner = null)
        : base(line > 0 ? $"{message} (template line {line})" : message, inner)
    {
        Line = line;
    }

    public int Line { get; }
}
