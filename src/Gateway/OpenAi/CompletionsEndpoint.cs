using Loom.Silo.Configuration;
using Loom.Silo.Routing;
using Loom.Silo.Worker;
using Loom.Gateway.Serving;
using System.Text;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>POST /v1/completions: one or more prompts (text or token ids), streamed or not.</summary>
internal sealed class CompletionsEndpoint(ServedModel served, GenerationRunner runner, RequestGate gate, IOptions<LoomGatewayOptions> options)
{
    // OpenAI's legacy completions default; chat defaults to the rest of the context instead.
    private const int DefaultMaxTokens = 16;

    public async Task HandleAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        // First, before the body is read: past gateway.max_concurrent_requests this is a 429 at once.
        using var slot = gate.Enter();
        using var doc = await ApiHttp.ReadJsonAsync(ctx, options.Value.MaxBodyBytes);
        var req = ApiRequests.ParseCompletion(doc.RootElement);
        var common = req.Common;
        RequestValidator.Validate(common, req.Prompts.Count, options.Value);
        var model = await served.ResolveAsync(common.Model, ct);

        var jobs = PromptJobs.ForCompletions(model, req.Prompts, common, DefaultMaxTokens);
        var echoTexts = new List<string>();
        if (req.Echo)
            for (int p = 0; p < jobs.Count; p++)
                echoTexts.Add(req.Prompts[p].Text ?? model.Tokenizer.Decode(jobs[p].TokenIds, common.SkipSpecialTokens));

        int n = common.Sampling.N, choices = jobs.Count * n;
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = ApiEndpoints.UnixNow();
        int? topK = common.Sampling.Logprobs;
        var usage = new UsageTally();
        var text = new TextPlan(common.Stop, common.IncludeStopStrInOutput, common.SkipSpecialTokens);
        var offsets = new int[choices];
        var echoed = new bool[choices];

        string Echo(int choice, string piece)
        {
            if (!req.Echo || echoed[choice]) return piece;
            echoed[choice] = true;
            string prompt = echoTexts[choice / n];
            offsets[choice] = prompt.Length;
            return prompt + piece;
        }

        await using var e = runner.RunAsync(id, model, jobs, text, topK is not null, usage, ct).GetAsyncEnumerator(ct);
        bool more = await e.MoveNextAsync(); // admission errors surface here, while an HTTP status can still be sent

        if (common.Stream)
        {
            await ApiHttp.StartSseAsync(ctx);
            await ApiEndpoints.StreamAsync(ctx, async () =>
            {
                while (more)
                {
                    var u = e.Current;
                    var choice = new CompletionChoice(u.Choice, Echo(u.Choice, u.Text), Logprobs(model.Tokenizer, u.Tokens, topK, ref offsets[u.Choice]), u.FinishReason);
                    await ApiHttp.WriteSseAsync(ctx, new CompletionResponse(id, "text_completion", created, model.Id, [choice], null),
                        ApiJsonContext.Default.CompletionResponse);
                    more = await e.MoveNextAsync();
                }
                if (common.IncludeUsage)
                    await ApiHttp.WriteSseAsync(ctx, new CompletionResponse(id, "text_completion", created, model.Id, [], usage.ToUsage()),
                        ApiJsonContext.Default.CompletionResponse);
            });
            return;
        }

        var texts = Enumerable.Range(0, choices).Select(_ => new StringBuilder()).ToArray();
        var tokens = Enumerable.Range(0, choices).Select(_ => new List<GeneratedToken>()).ToArray();
        var finish = new string?[choices];
        while (more)
        {
            var u = e.Current;
            texts[u.Choice].Append(Echo(u.Choice, u.Text));
            tokens[u.Choice].AddRange(u.Tokens);
            finish[u.Choice] ??= u.FinishReason;
            more = await e.MoveNextAsync();
        }
        var list = new CompletionChoice[choices];
        for (int c = 0; c < choices; c++)
        {
            int offset = req.Echo ? echoTexts[c / n].Length : 0;
            list[c] = new CompletionChoice(c, texts[c].ToString(), Logprobs(model.Tokenizer, tokens[c], topK, ref offset), finish[c]);
        }
        await ApiHttp.WriteJsonAsync(ctx, new CompletionResponse(id, "text_completion", created, model.Id, list, usage.ToUsage()),
            ApiJsonContext.Default.CompletionResponse);
    }

    /// <summary>The legacy logprobs object; text_offset counts characters from the start of the choice's text.</summary>
    private static CompletionLogprobs? Logprobs(ITokenizer tok, IReadOnlyList<GeneratedToken> tokens, int? topK, ref int offset)
    {
        if (topK is not { } k) return null;
        var strs = new List<string>(tokens.Count);
        var lps = new List<float?>(tokens.Count);
        var tops = new List<Dictionary<string, float>?>(tokens.Count);
        var offs = new List<int>(tokens.Count);
        foreach (var t in tokens)
        {
            string s = GenerationRunner.TokenText(tok, t.Id);
            strs.Add(s);
            lps.Add(t.Logprob);
            offs.Add(offset);
            offset += s.Length;
            Dictionary<string, float>? top = null;
            if (k > 0 && t.TopLogprobs is { } alts)
            {
                top = [];
                foreach (var a in alts.Take(k)) top.TryAdd(GenerationRunner.TokenText(tok, a.TokenId), a.Logprob);
            }
            tops.Add(top);
        }
        return new CompletionLogprobs(strs, lps, tops, offs);
    }
}
