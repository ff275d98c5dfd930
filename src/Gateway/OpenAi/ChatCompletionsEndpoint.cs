using Loom.Silo.Configuration;
using Loom.Silo.Routing;
using Loom.Silo.Worker;
using Loom.Gateway.Serving;
using System.Text;
using Loom.Gateway.Templates;
using Loom.Gateway.Structured;
using Loom.Gateway.Tokenization;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>POST /v1/chat/completions: the model's own chat template, then the same run as completions.</summary>
internal sealed class ChatCompletionsEndpoint(ServedModel served, GenerationRunner runner, RequestGate gate, IOptions<LoomGatewayOptions> options)
{
    public async Task HandleAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        // First, before the body is read: past gateway.max_concurrent_requests this is a 429 at once.
        using var slot = gate.Enter();
        using var doc = await ApiHttp.ReadJsonAsync(ctx, options.Value.MaxBodyBytes);
        var req = ApiRequests.ParseChat(doc.RootElement);
        var tools = ToolRequests.Parse(doc.RootElement);
        var common = req.Common;
        RequestValidator.Validate(common, 1, options.Value);
        var model = await served.ResolveAsync(common.Model, ct);
        RequestValidator.ValidateForModel(common, model);
        ToolCallFormat? format = tools is { Active: true } ? ToolCallFormats.Detect(options.Value.ToolCallParser, model.Info.Architecture, model.Info.TokenizerConfigJson) : null;
        if (tools is { Active: true, Forced: true })
        {
            // tool_choice required or named: the output is calls, their arguments held to each tool's schema.
            if (common.Sampling.Structured is not null)
                throw new InvalidRequestException("'tool_choice' required or naming a function cannot be combined with response_format or structured_outputs.", "tool_choice");
            common = common with { Sampling = common.Sampling with { Structured = ToolCallFormats.ForcedCalls(tools, format!.Value) } };
        }
        else if (tools is { Active: true } && common.Sampling.Structured is null && ToolCallFormats.StrictAutoCalls(tools, format!.Value) is { } strict)
            common = common with { Sampling = common.Sampling with { Structured = strict } };
        var outputs = format is { } f ? Enumerable.Range(0, common.Sampling.N).Select(_ => new ToolCallOutput(f)).ToArray() : null;

        string prompt = ApiEndpoints.RenderChat(model, req.MessagesJson, req.AddGenerationPrompt, req.ToolsJson, req.TemplateKwargs);
        // The template already wrote BOS and friends; adding special tokens again would double them (vLLM's default too).
        int[] ids = PromptJobs.Tokenize(model, prompt, common.AddSpecialTokens ?? false, "messages");
        var job = new PromptJob(ids, GenerationRunner.Resolve(model, common.Sampling, common.MaxTokens, ids.Length, defaultMax: null));

        int n = common.Sampling.N;
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = ApiEndpoints.UnixNow();
        int? topK = common.Sampling.Logprobs;
        var usage = new UsageTally();
        var text = new TextPlan(common.Stop, common.IncludeStopStrInOutput, common.SkipSpecialTokens);

        await using var e = runner.RunAsync(id, model, [job], text, req.Logprobs, usage, ct).GetAsyncEnumerator(ct);
        bool more = await e.MoveNextAsync(); // admission errors surface here, while an HTTP status can still be sent

        ChatCompletionChunk Chunk(ChatChunkChoice choice) => new(id, "chat.completion.chunk", created, model.Id, [choice], null);

        if (common.Stream)
        {
            await ApiHttp.StartSseAsync(ctx);
            await ApiEndpoints.StreamAsync(ctx, async () =>
            {
                // OpenAI opens every choice with a role-only delta.
                for (int c = 0; c < n; c++)
                    await ApiHttp.WriteSseAsync(ctx, Chunk(new ChatChunkChoice(c, new ChatDelta("assistant", ""), null, null)),
                        ApiJsonContext.Default.ChatCompletionChunk);
                while (more)
                {
                    var u = e.Current;
                    var delta = new ChatDelta(null, u.Text.Length > 0 ? u.Text : null);
                    string? finishReason = u.FinishReason;
                    if (outputs is not null)
                    {
                        // OpenAI's shape: a call opens with a chunk of its id, type and name; argument text follows in later chunks.
                        var (content, calls, fin) = outputs[u.Choice].Next(u.Text, u.FinishReason);
                        var pieces = new List<ChatDelta>();
                        if (content is not null) pieces.Add(new ChatDelta(null, content));
                        foreach (var call in calls ?? []) pieces.Add(new ChatDelta(null, null, [call]));
                        for (int i = 0; i < pieces.Count - 1; i++)
                            await ApiHttp.WriteSseAsync(ctx, Chunk(new ChatChunkChoice(u.Choice, pieces[i], null, null)), ApiJsonContext.Default.ChatCompletionChunk);
                        (delta, finishReason) = (pieces.Count > 0 ? pieces[^1] : new ChatDelta(null, null), fin);
                        if (pieces.Count == 0 && fin is null) { more = await e.MoveNextAsync(); continue; }
                    }
                    await ApiHttp.WriteSseAsync(ctx, Chunk(new ChatChunkChoice(u.Choice, delta, Logprobs(model.Tokenizer, u.Tokens, req.Logprobs, topK), finishReason)),
                        ApiJsonContext.Default.ChatCompletionChunk);
                    more = await e.MoveNextAsync();
                }
                if (common.IncludeUsage)
                    await ApiHttp.WriteSseAsync(ctx, new ChatCompletionChunk(id, "chat.completion.chunk", created, model.Id, [], usage.ToUsage()),
                        ApiJsonContext.Default.ChatCompletionChunk);
            });
            return;
        }

        var texts = Enumerable.Range(0, n).Select(_ => new StringBuilder()).ToArray();
        var tokens = Enumerable.Range(0, n).Select(_ => new List<GeneratedToken>()).ToArray();
        var finish = new string?[n];
        while (more)
        {
            var u = e.Current;
            texts[u.Choice].Append(u.Text);
            tokens[u.Choice].AddRange(u.Tokens);
            finish[u.Choice] ??= u.FinishReason;
            more = await e.MoveNextAsync();
        }
        var choices = new ChatChoice[n];
        for (int c = 0; c < n; c++)
        {
            var message = new ChatMessage("assistant", texts[c].ToString());
            if (outputs is not null)
            {
                finish[c] = outputs[c].Next(texts[c].ToString(), finish[c] ?? "length").Finish;
                message = outputs[c].Message();
            }
            choices[c] = new ChatChoice(c, message, Logprobs(model.Tokenizer, tokens[c], req.Logprobs, topK), finish[c]);
        }
        await ApiHttp.WriteJsonAsync(ctx, new ChatCompletionResponse(id, "chat.completion", created, model.Id, choices, usage.ToUsage()),
            ApiJsonContext.Default.ChatCompletionResponse);
    }

    private static ChatLogprobs? Logprobs(ITokenizer tok, IReadOnlyList<GeneratedToken> tokens, bool want, int? topK)
    {
        if (!want) return null;
        int k = topK ?? 0;
        var content = new List<ChatTokenLogprob>(tokens.Count);
        foreach (var t in tokens)
        {
            string s = GenerationRunner.TokenText(tok, t.Id);
            var tops = new List<ChatTopLogprob>();
            if (k > 0 && t.TopLogprobs is { } alts)
                foreach (var a in alts.Take(k))
                {
                    string at = GenerationRunner.TokenText(tok, a.TokenId);
                    tops.Add(new ChatTopLogprob(at, a.Logprob, Bytes(at)));
                }
            content.Add(new ChatTokenLogprob(s, t.Logprob ?? 0f, Bytes(s), tops));
        }
        return new ChatLogprobs(content);
    }

    private static int[] Bytes(string s) => [.. Encoding.UTF8.GetBytes(s).Select(b => (int)b)];
}
