using System.Text.Json;
using Loom.Gateway.Tests.OpenAi;

namespace Loom.Gateway.Tests.OpenAi;

/// <summary>/v1/completions and /v1/chat/completions semantics over the fake cluster.</summary>
public sealed class CompletionEndpointTests : IAsyncLifetime
{
    private LoomTestServer _server = null!;
    public async Task InitializeAsync() => _server = await LoomTestServer.StartAsync();
    public async Task DisposeAsync() => await _server.DisposeAsync();

    private FakeGenerationClient Cluster => _server.Cluster;

    private static string[] Texts(JsonElement r) => [.. r.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()!)];

    [Fact]
    public async Task Prompt_AllFourShapes()
    {
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"ab","max_tokens":3}""");
        Assert.Equal(["Hel"], Texts(r));
        Assert.Equal([(int)'a', 'b'], Cluster.Requests.Last().PromptTokenIds);

        r = await _server.PostOkAsync("v1/completions", """{"prompt":["a","bc"],"max_tokens":2}""");
        Assert.Equal(["He", "He"], Texts(r));
        Assert.Equal(3, r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(4, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        r = await _server.PostOkAsync("v1/completions", """{"prompt":[72,105],"max_tokens":1}""");
        Assert.Equal([72, 105], Cluster.Requests.Last().PromptTokenIds);

        r = await _server.PostOkAsync("v1/completions", """{"prompt":[[1,2],[3]],"max_tokens":1,"n":2}""");
        Assert.Equal(4, r.GetProperty("choices").GetArrayLength());
        Assert.Equal([0, 1, 2, 3], r.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(["H", "S", "H", "S"], Texts(r)); // prompt-major, then sample
    }

    [Fact]
    public async Task Echo_PrependsThePrompt()
    {
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"Say: ","max_tokens":2,"echo":true}""");
        Assert.Equal(["Say: He"], Texts(r));
    }

    [Fact]
    public async Task DefaultMaxTokens_Is16ForCompletions_RestOfContextForChat()
    {
        Cluster.Script = (_, _) => new string('x', 300);
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"a"}""");
        Assert.Equal(16, Cluster.Requests.Last().Sampling.MaxTokens);
        Assert.Equal("length", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        await _server.PostOkAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"a"}]}""");
        Assert.Equal(256 - 20, Cluster.Requests.Last().Sampling.MaxTokens);
    }

    [Fact]
    public async Task VllmExtras_AreForwarded()
    {
        await _server.PostOkAsync("v1/completions",
            """{"prompt":"a","max_tokens":20,"top_k":5,"min_p":0.1,"repetition_penalty":1.2,"min_tokens":2,"ignore_eos":true,"stop_token_ids":[7,8],"seed":-1,"user":"u"}""");
        var s = Cluster.Requests.Last().Sampling;
        Assert.Equal(5, s.TopK);
        Assert.Equal(0.1f, s.MinP);
        Assert.Equal(1.2f, s.RepetitionPenalty);
        Assert.Equal(2, s.MinTokens);
        Assert.True(s.IgnoreEos);
        Assert.Equal([7, 8], s.StopTokenIds);
        Assert.Equal(ulong.MaxValue, s.Seed);
        await _server.PostOkAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"a"}],"max_tokens":9,"max_completion_tokens":7}""");
        Assert.Equal(7, Cluster.Requests.Last().Sampling.MaxTokens); // the newer name wins
    }

    [Theory]
    [InlineData("\", w\"", false, "Hello", 8)]
    [InlineData("\", w\"", true, "Hello, w", 8)]
    [InlineData("[\"zzz\", \"lo, \"]", false, "Hel", 7)]
    [InlineData("\"world.\"", false, "Hello, ", 13)]
    public async Task StopStrings_AcrossTokens(string stop, bool include, string expected, int tokens)
    {
        var r = await _server.PostOkAsync("v1/completions", $$"""{"prompt":"a","max_tokens":50,"stop":{{stop}},"include_stop_str_in_output":{{(include ? "true" : "false")}}}""");
        Assert.Equal([expected], Texts(r));
        Assert.Equal("stop", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(tokens, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task StopString_CancelsTheWorkerRequest()
    {
        Cluster.Script = (_, _) => "abcSTOP" + new string('z', 200);
        Cluster.TokenDelay = TimeSpan.FromMilliseconds(1);
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"a","max_tokens":200,"stop":"STOP"}""");
        Assert.Equal(["abc"], Texts(r));
        string id = Cluster.Requests.Last().RequestId;
        Assert.True(Cluster.Cancelled.ContainsKey(id), "the worker request should be aborted once the stop string fired");
        Assert.False(Cluster.Completed.ContainsKey(id));
    }

    [Fact]
    public async Task StopString_WithN2_StopsOnlyThatSample()
    {
        Cluster.Script = (_, i) => i == 0 ? "ab|cd" : "abcdef";
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"a","max_tokens":50,"n":2,"stop":"|"}""");
        Assert.Equal(["ab", "abcdef"], Texts(r));
    }

    [Fact]
    public async Task EosToken_IsNotInTheText_UnlessSpecialTokensAreKept()
    {
        Cluster.Script = (_, _) => "ok<|im_end|>more";
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"a","max_tokens":50}""");
        Assert.Equal(["okmore"], Texts(r)); // special tokens skipped by default
        r = await _server.PostOkAsync("v1/completions", """{"prompt":"a","max_tokens":50,"skip_special_tokens":false}""");
        Assert.Equal(["ok<|im_end|>more"], Texts(r)); // the EOS that ended it still is not text
        Assert.Equal("stop", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task MultiByteCharacters_SplitAcrossTokens_ArriveWhole()
    {
        Cluster.Script = (_, _) => "a😀é中";
        using var resp = await _server.PostJsonAsync("v1/completions", """{"prompt":"a","max_tokens":50,"stream":true}""");
        var events = LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync());
        var pieces = events[..^1].Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!).ToList();
        Assert.Equal("a😀é中", string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.Contains("😀", pieces);
    }

    [Fact]
    public async Task CompletionLogprobs_LegacyShape()
    {
        var r = await _server.PostOkAsync("v1/completions", """{"prompt":"a","max_tokens":3,"logprobs":2}""");
        var lp = r.GetProperty("choices")[0].GetProperty("logprobs");
        Assert.Equal(["H", "e", "l"], lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal([-0.25f, -0.25f, -0.25f], lp.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetSingle()));
        Assert.Equal([0, 1, 2], lp.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()));
        var top = lp.GetProperty("top_logprobs")[0];
        Assert.Equal(2, top.EnumerateObject().Count());
        Assert.Equal(-0.25f, top.GetProperty("H").GetSingle());
        Assert.Equal(2, Cluster.Requests.Last().Sampling.Logprobs);
    }

    [Fact]
    public async Task ChatLogprobs_Shape_StreamedAndNot()
    {
        var r = await _server.PostOkAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"a"}],"max_tokens":2,"logprobs":true,"top_logprobs":3}""");
        var content = r.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        Assert.Equal(2, content.GetArrayLength());
        Assert.Equal("H", content[0].GetProperty("token").GetString());
        Assert.Equal([72], content[0].GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        Assert.Equal(3, content[0].GetProperty("top_logprobs").GetArrayLength());
        Assert.Equal("H", content[0].GetProperty("top_logprobs")[0].GetProperty("token").GetString());

        // logprobs without top_logprobs: the sampled token only.
        r = await _server.PostOkAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"a"}],"max_tokens":1,"logprobs":true}""");
        Assert.Equal(0, r.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content")[0].GetProperty("top_logprobs").GetArrayLength());
        Assert.Equal(0, Cluster.Requests.Last().Sampling.Logprobs);

        using var resp = await _server.PostJsonAsync("v1/chat/completions", """{"messages":[{"role":"user","content":"a"}],"max_tokens":2,"logprobs":true,"stream":true}""");
        var events = LoomTestServer.SseEvents(await resp.Content.ReadAsStringAsync());
        var chunk = JsonDocument.Parse(events[1]).RootElement.GetProperty("choices")[0];
        Assert.Equal("H", chunk.GetProperty("logprobs").GetProperty("content")[0].GetProperty("token").GetString());
    }

    [Fact]
    public async Task Chat_TemplateKwargs_Tools_AndContentParts_ReachTheTemplate()
    {
        var r = await _server.PostOkAsync("v1/chat/completions",
            """{"messages":[{"role":"system","content":[{"type":"text","text":"Be "},{"type":"text","text":"brief"}]},{"role":"user","content":"a"}],"chat_template_kwargs":{"enable_thinking":false},"tools":[{"type":"function","function":{"name":"f"}}],"max_tokens":1}""");
        Assert.Equal(false, _server.Template.LastKwargs!["enable_thinking"]);
        Assert.Contains("\"name\":\"f\"", _server.Template.LastToolsJson);
        string prompt = new ByteTokenizer().Decode([.. Cluster.Requests.Last().PromptTokenIds], skipSpecialTokens: false);
        Assert.Equal("<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", prompt);
        Assert.Equal("chat.completion", r.GetProperty("object").GetString());
        Assert.StartsWith("chatcmpl-", r.GetProperty("id").GetString());
    }
}
