using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Loom.Gateway.Tests.OpenAi;

namespace Loom.Gateway.Tests.Structured;

/// <summary>
/// Structured outputs end to end on `loom serve`'s own host and the demo model (random weights, GPT-2's
/// real tokenizer): 20 schemas × 50 seeded samples, every output that finished with "stop" parsed and
/// validated by an independent validator (JsonSchema.Net, formats required); regex outputs full-match
/// .NET's Regex; choice outputs are one of the choices.
/// </summary>
public sealed class StructuredGenerationTests(RealModelServer server) : IClassFixture<RealModelServer>
{
    private const int Samples = 50;

    private async Task<JsonElement> PostAsync(string path, string body)
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromMinutes(3) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", RealModelServer.Key);
        using var resp = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, $"{(int)resp.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task StructuredJsonSchemasEveryStoppedOutputValidates()
    {
        var failures = new List<string>();
        var options = new EvaluationOptions { RequireFormatValidation = true };
        int stopped = 0;
        for (int i = 0; i < StructuredSchemas.All.Length; i++)
        {
            string schemaText = StructuredSchemas.All[i];
            var schema = JsonSchema.FromText(schemaText);
            string body = "{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Answer in JSON (" + i + ")\"}],\"n\":" + Samples
                + ",\"seed\":" + (100 + i) + ",\"temperature\":1,\"max_tokens\":200,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s" + i
                + "\",\"schema\":" + schemaText + ",\"strict\":true}}}";
            var r = await PostAsync("v1/chat/completions", body);
            int stoppedHere = 0;
            foreach (var choice in r.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("finish_reason").GetString() != "stop") continue;
                stoppedHere++;
                string content = choice.GetProperty("message").GetProperty("content").GetString()!;
                try
                {
                    using var doc = JsonDocument.Parse(content);
                    var result = schema.Evaluate(doc.RootElement, options);
                    if (!result.IsValid) failures.Add($"schema {i}: invalid output {content}");
                }
                catch (JsonException e) { failures.Add($"schema {i}: not JSON ({e.Message}): {content}"); }
            }
            Assert.True(stoppedHere >= Samples / 2, $"schema {i}: only {stoppedHere} of {Samples} samples finished with stop");
            stopped += stoppedHere;
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        Assert.True(stopped >= StructuredSchemas.All.Length * Samples * 3 / 4, $"{stopped} stopped");
    }

    [Fact]
    public async Task StructuredRegexAndChoiceOnCompletionsMatch()
    {
        const string pattern = @"[A-Z][a-z]{1,6} (\d{1,3}|ñ+|日本)-(yes|no)";
        var r = await PostAsync("v1/completions", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = "demo", ["prompt"] = "Code:", ["n"] = Samples, ["seed"] = 3, ["temperature"] = 1, ["max_tokens"] = 64,
            ["structured_outputs"] = new Dictionary<string, object> { ["regex"] = pattern },
        }));
        int stopped = 0;
        foreach (var c in r.GetProperty("choices").EnumerateArray())
        {
            if (c.GetProperty("finish_reason").GetString() != "stop") continue;
            stopped++;
            Assert.Matches(new Regex("^(?:" + pattern + ")$"), c.GetProperty("text").GetString()!);
        }
        Assert.True(stopped >= Samples / 2, $"{stopped} stopped");

        string[] choices = ["positive", "negative", "neutral ☺"];
        r = await PostAsync("v1/chat/completions", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = "demo", ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = "Sentiment?" } },
            ["n"] = 20, ["seed"] = 5, ["temperature"] = 1, ["max_tokens"] = 16,
            ["structured_outputs"] = new Dictionary<string, object> { ["choice"] = choices },
        }));
        var seen = new HashSet<string>();
        foreach (var c in r.GetProperty("choices").EnumerateArray())
        {
            Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
            string text = c.GetProperty("message").GetProperty("content").GetString()!;
            Assert.Contains(text, choices);
            seen.Add(text);
        }
        Assert.True(seen.Count > 1, "20 seeded samples all gave one choice");
    }

    [Fact]
    public async Task StructuredJsonObjectModeStreamsTheSameTextAsNonStreamed()
    {
        string body = """{"model":"demo","messages":[{"role":"user","content":"JSON please"}],"seed":9,"temperature":1,"max_tokens":40,"response_format":{"type":"json_object"}}""";
        var r = await PostAsync("v1/chat/completions", body);
        string text = r.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.StartsWith("{", text);
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Bearer", RealModelServer.Key);
        using var resp = await http.PostAsync("v1/chat/completions", new StringContent(body.Replace("\"seed\"", "\"stream\":true,\"seed\""), Encoding.UTF8, "application/json"));
        var streamed = new StringBuilder();
        foreach (var e in LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync())[..^1])
        {
            using var chunk = JsonDocument.Parse(e);
            foreach (var ch in chunk.RootElement.GetProperty("choices").EnumerateArray())
                if (ch.GetProperty("delta").TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) streamed.Append(c.GetString());
        }
        Assert.Equal(text, streamed.ToString());

        // The worker's compiled constraints show up on /metrics, within engine.structured_output_cache_bytes.
        var line = (await http.GetStringAsync("metrics")).Split('\n').Single(l => l.StartsWith("loom:structured_cache_bytes{", StringComparison.Ordinal));
        double bytes = double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(bytes, 1, 256.0 * 1024 * 1024);
    }
}
