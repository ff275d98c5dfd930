using System.Text.Json;
using System.Text.Json.Nodes;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// Test-time oracle: Python's own Jinja2 (Debian's python3-jinja2, installed by
/// scripts/install-deps.sh), set up the way transformers renders chat templates: an
/// ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, loop controls,
/// {% generation %}, and transformers' tojson, raise_exception and strftime_now.
/// Callers skip when /usr/bin/python3 or its jinja2 module is missing.
/// </summary>
internal static class PythonJinja
{
    // Debian's interpreter by path: a python3 earlier on PATH (pyenv, venv) lacks the Debian module.
    public const string Python = "/usr/bin/python3";

    /// <summary>The date strftime_now sees, on both sides: 2025-03-07 14:05:09.</summary>
    public static readonly DateTime Now = new(2025, 3, 7, 14, 5, 9);

    // argv: input path, output path. Input: [{id, template, context}]. Output: {id: {text} | {error}}.
    // tojson is transformers' definition verbatim; the rest mirrors its environment.
    private const string RenderScript = """
        import json, sys
        from datetime import datetime
        import jinja2
        from jinja2 import nodes
        from jinja2.ext import Extension, loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        class Generation(Extension):
            # transformers' AssistantTracker: {% generation %} renders its body unchanged.
            tags = {"generation"}
            def parse(self, parser):
                lineno = next(parser.stream).lineno
                body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
                return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)
            def _render(self, caller):
                return caller()

        def raise_exception(message):
            raise jinja2.exceptions.TemplateError(message)

        def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
            return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

        NOW = datetime(2025, 3, 7, 14, 5, 9)

        def strftime_now(format):
            return NOW.strftime(format)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = strftime_now

        with open(sys.argv[1], encoding="utf-8") as f:
            cases = json.load(f)
        compiled = {}
        out = {}
        for c in cases:
            try:
                t = compiled.get(c["template"])
                if t is None:
                    t = compiled[c["template"]] = env.from_string(c["template"])
                out[c["id"]] = {"text": t.render(**c["context"])}
            except Exception as e:
                out[c["id"]] = {"error": type(e).__name__ + ": " + str(e)}
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False)
        """;

    private static readonly Lazy<string?> Missing = new(() =>
    {
        if (!File.Exists(Python))
        {
            return $"{Python} is not installed (scripts/install-deps.sh installs python3-jinja2)";
        }
        var (code, err) = NpmTokenizers.Run(Python, ["-c", "import jinja2"], Path.GetTempPath(), timeoutMs: 30_000);
        // The traceback's last line says why ("No module named 'jinja2'").
        string why = err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
        return code == 0 ? null : $"{Python} cannot import jinja2 (scripts/install-deps.sh installs python3-jinja2): {why}";
    });

    /// <summary>True when Python Jinja2 can render; otherwise <paramref name="reason"/> says why not.</summary>
    public static bool IsAvailable(out string reason)
    {
        reason = Missing.Value ?? "";
        return Missing.Value is null;
    }

    /// <summary>Renders every case in one Python run: id → (text, error).</summary>
    public static Dictionary<string, (string? Text, string? Error)> Render(IEnumerable<(string Id, string Template, JsonObject Context)> cases) =>
        JinjaReference.RenderBatch(Path.Combine(Path.GetTempPath(), "loom-python-jinja-" + Guid.NewGuid().ToString("N")), Python, "render.py", RenderScript,
            (script, input, output) => [script, input, output], cases);
}
