using System.Text;
using Loom.Gateway.OpenAi;

namespace Loom.Gateway.Structured;

/// <summary>
/// One chat choice's output when tools are on: text goes through a <see cref="ToolCallParser"/>,
/// and comes out as content and tool-call pieces, streamed (<see cref="Next"/>) or whole
/// (<see cref="Message"/>); finish_reason "stop" becomes "tool_calls" once the model called a tool.
/// </summary>
public sealed class ToolCallOutput(ToolCallFormat format)
{
    private readonly ToolCallParser _parser = new(format);
    private readonly StringBuilder _content = new();
    private readonly List<(string Id, string Name, StringBuilder Args)> _calls = [];

    /// <summary>The delta for new text (and, with <paramref name="finish"/>, the end of the output); stream each tool-call piece as a chunk of its own.</summary>
    public (string? Content, IReadOnlyList<ToolCallDelta>? Calls, string? Finish) Next(string text, string? finish)
    {
        var content = new StringBuilder();
        var pieces = new List<ToolCallPiece>();
        _parser.Feed(text, content, pieces);
        if (finish is not null) _parser.Finish(content, pieces);
        _content.Append(content);
        var deltas = new List<ToolCallDelta>();
        foreach (var p in pieces)
        {
            if (p.Id is not null)
            {
                _calls.Add((p.Id, p.Name!, new StringBuilder()));
                deltas.Add(new ToolCallDelta(p.Index, p.Id, "function", new FunctionCallDelta(p.Name, "")));
            }
            else
            {
                _calls[p.Index].Args.Append(p.Arguments);
                // Fragments of one call in one update travel together (never with its opening piece).
                if (deltas.Count > 0 && deltas[^1].Index == p.Index && deltas[^1].Id is null)
                    deltas[^1] = deltas[^1] with { Function = deltas[^1].Function with { Arguments = deltas[^1].Function.Arguments + p.Arguments } };
                else deltas.Add(new ToolCallDelta(p.Index, null, null, new FunctionCallDelta(null, p.Arguments)));
            }
        }
        return (content.Length > 0 ? content.ToString() : null, deltas.Count > 0 ? deltas : null, Finish(finish));
    }

    public string? Finish(string? finish) => finish == "stop" && _calls.Count > 0 ? "tool_calls" : finish;

    /// <summary>The whole message once the output has ended.</summary>
    public ChatMessage Message() => new("assistant", _content.Length > 0 ? _content.ToString() : null,
        ToolCalls: _calls.Count > 0 ? [.. _calls.Select(c => new ToolCall(c.Id, "function", new FunctionCall(c.Name, c.Args.ToString())))] : null);
}
