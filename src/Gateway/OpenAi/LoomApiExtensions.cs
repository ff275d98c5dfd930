using Loom.Gateway.Serving;
using Loom.Grains.Abstractions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Loom.Gateway.OpenAi;

// PLACEHOLDER written by the cluster work (issue 4) so `loom serve` can be tested end to end before
// the OpenAI HTTP layer lands. The OpenAI layer owns this file and replaces it wholesale: keep only
// the two method names (AddLoomApi, MapLoomApi). It maps GET /health and a token-ids-only
// POST /v1/completions ({"prompt": [ids], "max_tokens", "temperature", "seed"}), non-streaming.
public static class LoomApiExtensions
{
    public static IServiceCollection AddLoomApi(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapLoomApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", () => Results.Ok());
        app.MapPost("/v1/completions", async (PlaceholderCompletion body, IGenerationClient client, CancellationToken ct) =>
        {
            var sampling = new SamplingParams { MaxTokens = body.max_tokens ?? 16, Temperature = body.temperature ?? 1f, Seed = body.seed };
            var request = new GenerationRequest("cmpl-" + Guid.NewGuid().ToString("N"), body.prompt ?? [], sampling);
            var ids = new List<int>();
            FinishReason? finish = null;
            try
            {
                await foreach (var d in client.GenerateAsync(request, ct))
                {
                    if (d.TokenId >= 0) ids.Add(d.TokenId);
                    finish ??= d.Finish;
                }
            }
            catch (ArgumentException e) { return Results.BadRequest(new { error = new { message = e.Message, param = e.ParamName } }); }
            catch (OverloadedException e) { return Results.Json(new { error = new { message = e.Message } }, statusCode: 503); }
            return Results.Ok(new
            {
                id = request.RequestId,
                choices = new[] { new { index = 0, token_ids = ids, finish_reason = finish?.ToString().ToLowerInvariant() } },
                usage = new { prompt_tokens = request.PromptTokenIds.Count, completion_tokens = ids.Count },
            });
        });
        return app;
    }

#pragma warning disable IDE1006 // JSON names as OpenAI spells them
    public sealed record PlaceholderCompletion(int[]? prompt, int? max_tokens, float? temperature, ulong? seed);
#pragma warning restore IDE1006
}
