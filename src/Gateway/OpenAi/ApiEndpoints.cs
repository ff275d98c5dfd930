using Loom.Silo.Configuration;
using System.Reflection;
using System.Text.Json;
using Loom.Gateway.Metrics;
using Loom.Gateway.Serving;
using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;
using Loom.Grains.Abstractions;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>The small endpoints (models, tokenize, detokenize, health, version, metrics) and helpers shared by all.</summary>
internal sealed class ApiEndpoints(ServedModel served, IGenerationClient client, LoomMetrics metrics, IOptions<LoomGatewayOptions> options)
{
    private static readonly long StartedAt = UnixNow();
    // Scrapes and probes must answer even when the cluster is wedged.
    private static readonly TimeSpan ClusterProbeTimeout = TimeSpan.FromSeconds(3);

    public static long UnixNow() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public static string Version { get; } =
        typeof(ApiEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    public static string RenderChat(ServedModelText model, string messagesJson, bool addGenerationPrompt, string? toolsJson, IReadOnlyDictionary<string, object?>? kwargs)
    {
        if (model.ChatTemplate is not { } template)
            throw ApiException.BadRequest($"The model `{model.Id}` has no chat template; use /v1/completions.", "messages");
        try
        {
            return template.Render(messagesJson, addGenerationPrompt, toolsJson, kwargs);
        }
        catch (Exception e) when (e is ChatTemplateException or JinjaException)
        {
            // Templates reject bad conversations with raise_exception("..."); that message is meant for
            // the user. Any other exception is the server's own fault: a logged 500 (ApiErrors.Map).
            throw ApiException.BadRequest($"The chat template could not render these messages: {e.Message}", "messages");
        }
    }

    /// <summary>
    /// Runs a stream's body, then ends it with [DONE]. A failure after the headers went out becomes
    /// an error event (OpenAI's shape) before [DONE]; a client that left gets nothing more.
    /// </summary>
    public static async Task StreamAsync(HttpContext ctx, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            var api = ApiErrors.Map(e);
            ctx.RequestServices.GetRequiredService<LoomMetrics>().HttpError(api.Status);
            if (api.Status >= 500)
                ctx.RequestServices.GetRequiredService<ILogger<ApiEndpoints>>().LogError(e, "stream {Path} failed", ctx.Request.Path);
            await ApiHttp.WriteSseAsync(ctx, ApiHttp.ToEnvelope(api), ApiJsonContext.Default.ErrorEnvelope);
        }
        await ApiHttp.WriteSseDoneAsync(ctx);
    }

    public async Task ModelsAsync(HttpContext ctx)
    {
        var m = await served.GetAsync(ctx.RequestAborted);
        await ApiHttp.WriteJsonAsync(ctx, new ModelList("list", [Card(m)]), ApiJsonContext.Default.ModelList);
    }

    public async Task ModelAsync(HttpContext ctx)
    {
        var m = await served.GetAsync(ctx.RequestAborted);
        string requested = (string)ctx.Request.RouteValues["model"]!;
        if (!m.Answers(requested)) throw ApiException.ModelNotFound(requested);
        await ApiHttp.WriteJsonAsync(ctx, Card(m), ApiJsonContext.Default.ModelCard);
    }

    private static ModelCard Card(ServedModelText m) => new(m.Id, "model", StartedAt, "loom", m.Info.Name, null, m.Info.MaxModelLen);

    /// <summary>vLLM's /tokenize: a "prompt" (special tokens added by default) or chat "messages" (templated).</summary>
    public async Task TokenizeAsync(HttpContext ctx)
    {
        using var doc = await ApiHttp.ReadJsonAsync(ctx, options.Value.MaxBodyBytes);
        var f = new JsonFields(doc.RootElement);
        var m = await served.ResolveAsync(f.String("model"), ctx.RequestAborted);
        string prompt, param;
        bool addSpecialTokens;
        if (f.Raw("messages") is { } messages)
        {
            var kwargs = ApiRequests.ParseTemplateKwargs(f);
            prompt = RenderChat(m, ChatMessages.Normalize(messages), f.Bool("add_generation_prompt") ?? true, null, kwargs);
            (param, addSpecialTokens) = ("messages", f.Bool("add_special_tokens") ?? false);
        }
        else
        {
            prompt = f.String("prompt") ?? throw ApiException.BadRequest("Send 'prompt' (a string) or 'messages'.", "prompt");
            (param, addSpecialTokens) = ("prompt", f.Bool("add_special_tokens") ?? true);
        }
        // Counting stops at max_model_len (a prompt no request could use), so a huge body is not tokenized whole.
        if (!m.Tokenizer.TryEncode(prompt, addSpecialTokens, m.Info.MaxModelLen, out var ids))
            throw ApiException.BadRequest($"This model's maximum context length is {m.Info.MaxModelLen} tokens; this text has more.", param, "context_length_exceeded");
        IReadOnlyList<string>? strs = f.Bool("return_token_strs") == true ? [.. ids.Select(i => GenerationRunner.TokenText(m.Tokenizer, i))] : null;
        await ApiHttp.WriteJsonAsync(ctx, new TokenizeResponse(ids.Length, m.Info.MaxModelLen, ids, strs), ApiJsonContext.Default.TokenizeResponse);
    }

    public async Task DetokenizeAsync(HttpContext ctx)
    {
        using var doc = await ApiHttp.ReadJsonAsync(ctx, options.Value.MaxBodyBytes);
        var f = new JsonFields(doc.RootElement);
        var m = await served.ResolveAsync(f.String("model"), ctx.RequestAborted);
        if (f.Raw("tokens") is not { ValueKind: JsonValueKind.Array } arr)
            throw ApiException.BadRequest("'tokens' is required and must be an array of token ids.", "tokens");
        var ids = arr.EnumerateArray().Select(e => JsonFields.ReadInt(e, "tokens")).ToArray();
        foreach (int id in ids)
            if (id < 0 || id >= m.Info.VocabSize) throw ApiException.BadRequest($"Token id {id} is out of vocabulary (the model has {m.Info.VocabSize} tokens).", "tokens");
        await ApiHttp.WriteJsonAsync(ctx, new DetokenizeResponse(m.Tokenizer.Decode(ids, skipSpecialTokens: false)), ApiJsonContext.Default.DetokenizeResponse);
    }

    /// <summary>200 with an empty body when at least one worker answers, as vLLM's /health; else 503.</summary>
    public async Task HealthAsync(HttpContext ctx)
    {
        var stats = await TryStatsAsync(ctx.RequestAborted);
        IReadOnlyDictionary<string, string> unavailable;
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted))
        {
            cts.CancelAfter(ClusterProbeTimeout);
            try { unavailable = await client.GetUnavailableWorkersAsync(cts.Token); }
            catch (Exception e) when (!ctx.RequestAborted.IsCancellationRequested && e is not OutOfMemoryException) { unavailable = new Dictionary<string, string>(); }
        }
        // Why a worker is out (sick, draining) is operational state, not a secret: operators need it.
        string Why() => unavailable.Count == 0 ? "" : " Unavailable: " + string.Join("; ", unavailable.OrderBy(kv => kv.Key).Select(kv => kv.Value));
        if (stats is not { Count: > 0 })
            throw new ApiException(503, "No worker is reachable." + Why(), "server_error", null, "unavailable") { RetryAfter = TimeSpan.FromSeconds(5) };
        ctx.Response.StatusCode = 200;
        if (unavailable.Count > 0)
            await ctx.Response.WriteAsync($"degraded: {stats.Count} worker(s) serving.{Why()}", ctx.RequestAborted);
    }

    public async Task VersionAsync(HttpContext ctx)
    {
        var stats = await TryStatsAsync(ctx.RequestAborted);
        var workers = stats?.GroupBy(w => (w.Device, w.Isa)).OrderBy(g => g.Key).Select(g => new WorkerDevice(g.Key.Device, g.Key.Isa, g.Count())).ToList();
        await ApiHttp.WriteJsonAsync(ctx, new VersionResponse(Version, workers), ApiJsonContext.Default.VersionResponse);
    }

    public async Task MetricsAsync(HttpContext ctx)
    {
        var stats = await TryStatsAsync(ctx.RequestAborted);
        string name = options.Value.ServedModelName ?? "";
        if (name.Length == 0)
        {
            try { name = (await served.GetAsync(ctx.RequestAborted)).Id; }
            catch (Exception e) when (e is not OperationCanceledException) { name = "unknown"; }
        }
        ctx.Response.ContentType = Prometheus.ContentType;
        await ctx.Response.WriteAsync(metrics.Render(name, stats), ctx.RequestAborted);
    }

    private async Task<IReadOnlyList<WorkerStats>?> TryStatsAsync(CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(ClusterProbeTimeout);
        try { return await client.GetWorkerStatsAsync(cts.Token); }
        catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException) { return null; }
    }
}
