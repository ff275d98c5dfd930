using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Xunit.Abstractions;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// Loom against Python's Jinja2 on <see cref="JinjaGoldenCases"/>: the committed literals always
/// (CPU only), and Python Jinja2 itself when /usr/bin/python3 has jinja2.
/// </summary>
public sealed class JinjaGoldenTests(ITestOutputHelper output)
{
    private static readonly JsonSerializerOptions Readable = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static TheoryData<string> CaseIds => [.. JinjaGoldenCases.All.Select(c => c.Id)];

    public static TheoryData<string> ErrorIds => [.. JinjaGoldenCases.Errors.Select(c => c.Id)];

    private static string RenderLoom(string template, string context)
    {
        using var doc = JsonDocument.Parse(context);
        var vars = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        return new JinjaTemplate(template).Render(vars, () => PythonJinja.Now);
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void JinjaRendersCommittedPythonGolden(string id)
    {
        var c = JinjaGoldenCases.All.Single(x => x.Id == id);
        Assert.Equal(c.Expected, RenderLoom(c.Template, c.Context));
    }

    [Theory]
    [MemberData(nameof(ErrorIds))]
    public void JinjaRefusesWhatPythonRefuses(string id)
    {
        var c = JinjaGoldenCases.Errors.Single(x => x.Id == id);
        var e = Assert.Throws<JinjaException>(() => RenderLoom(c.Template, c.Context));
        Assert.Contains(c.LoomMessage, e.Message);
    }

    [SkippableFact]
    public void JinjaGoldensAreWhatPythonJinja2Renders()
    {
        Skip.IfNot(PythonJinja.IsAvailable(out string reason), reason);
        var jobs = JinjaGoldenCases.All.Select(c => (c.Id, c.Template, Context(c.Context)))
            .Concat(JinjaGoldenCases.Errors.Select(c => ("error:" + c.Id, c.Template, Context(c.Context))));
        var python = PythonJinja.Render(jobs);
        var failures = new List<string>();
        foreach (var c in JinjaGoldenCases.All)
        {
            var (text, error) = python[c.Id];
            if (error is not null)
            {
                failures.Add($"{c.Id}: Python Jinja2 raised {error}");
            }
            else if (text != c.Expected)
            {
                // Printed as a C# literal so a deliberate change can be pasted back into the table.
                failures.Add($"{c.Id}: Python Jinja2 renders {JsonSerializer.Serialize(text, Readable)}");
            }
        }
        foreach (var c in JinjaGoldenCases.Errors)
        {
            var (text, error) = python["error:" + c.Id];
            if (error is null)
            {
                failures.Add($"{c.Id}: Python Jinja2 rendered {JsonSerializer.Serialize(text, Readable)} instead of raising");
            }
            else
            {
                output.WriteLine($"{c.Id}: Python raises {error}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static JsonObject Context(string json) => JsonNode.Parse(json)!.AsObject();
}
