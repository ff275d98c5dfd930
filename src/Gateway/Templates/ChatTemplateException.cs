namespace Loom.Gateway.Templates;

/// <summary>The chat template could not be parsed or rendered for this request (bad messages,
/// a syntax error, or the template's own raise_exception). The HTTP layer answers 400 with Message.</summary>
public sealed class ChatTemplateException(string message, Exception? inner = null) : Exception(message, inner);
