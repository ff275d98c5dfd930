using Loom.Silo.Configuration;
using System.Security.Cryptography;
using System.Text;
using Grpc.AspNetCore.Server;
using Loom.Gateway.Metrics;
using Loom.Gateway.Serving;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// Maps any exception to the OpenAI error the client should see. Only deliberate request
/// validation (<see cref="InvalidRequestException"/>, a 4xx <see cref="ApiException"/>) is a 4xx;
/// everything else, an <see cref="ArgumentException"/> from deep inside included, is a 500 whose
/// message says nothing internal (no exception text, no silo address): the caller logs it.
/// </summary>
internal static class ApiErrors
{
    public const string InternalMessage = "The server had an error while processing your request.";

    public static ApiException Map(Exception e) => e switch
    {
        ApiException api => api,
        OverloadedException o => new ApiException(503, $"The server is overloaded ({o.Message}); retry after the interval in Retry-After.", "server_error", null, "overloaded")
        { RetryAfter = o.RetryAfter },
        TooManyRequestsException t => new ApiException(429, $"The model is overloaded ({t.Message}); retry after the interval in Retry-After.", "rate_limit_exceeded", null, "overloaded")
        { RetryAfter = t.RetryAfter },
        FirstTokenTimeoutException f => new ApiException(504, $"No token came back in time: {f.Message}", "server_error", null, "timeout"),
        InvalidRequestException r => ApiException.BadRequest(r.Message, r.Param),
        BadHttpRequestException { StatusCode: 413 } => new ApiException(413, "The request body is too large.", "invalid_request_error", null, "request_too_large"),
        BadHttpRequestException b => ApiException.BadRequest($"Bad request: {b.Message}"),
        // Its message is the worker's own text (exception messages, silo addresses): logged, never sent.
        GenerationFailedException => new ApiException(500, "The generation failed on a worker. " + InternalMessage, "server_error", null, "generation_failed"),
        _ => new ApiException(500, InternalMessage, "server_error"),
    };
}

/// <summary>
/// The front door's cross-cutting rules for the HTTP API: API keys (constant-time), the body-size
/// limit, OpenAI-shaped 404/405 for unknown routes, and every exception turned into an OpenAI
/// error. Requests routed to a gRPC method pass straight through: the gRPC service checks the key
/// itself (<see cref="Loom.Gateway.Grpc.ApiKeyInterceptor"/>) and answers in gRPC statuses. What
/// decides is the endpoint the route matched, never the Content-Type, which the client chooses.
/// </summary>
internal sealed class ApiMiddleware(RequestDelegate next, IOptions<LoomGatewayOptions> options, ApiKeys keys, LoomMetrics metrics, ILogger<ApiMiddleware> log)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        if (ctx.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is not null)
        {
            await next(ctx);
            return;
        }
        try
        {
            if (keys.Enabled && NeedsKey(ctx.Request.Path)) CheckKey(ctx);
            if (ctx.GetEndpoint() is null)
                throw new ApiException(404, $"Invalid URL ({ctx.Request.Method} {ctx.Request.Path}).", "invalid_request_error", null, "not_found");
            // Kestrel's own body limit would reset a client still sending; the endpoints enforce
            // max_body_bytes while reading and answer 413 (ApiHttp.ReadJsonAsync). Anything else
            // that reads a body gets Kestrel's limit at 4x ours.
            if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
                limit.MaxRequestBodySize = Math.Max(4 * options.Value.MaxBodyBytes, 4L << 20) + 1;
            await next(ctx);
            if (ctx.Response.StatusCode == 405 && !ctx.Response.HasStarted)
                throw new ApiException(405, $"Method {ctx.Request.Method} is not allowed on {ctx.Request.Path}.", "invalid_request_error", null, "method_not_allowed");
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer.
        }
        catch (Exception e)
        {
            var api = ApiErrors.Map(e);
            metrics.HttpError(api.Status);
            if (api.Status >= 500 && e is not OverloadedException)
                log.LogError(e, "{Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            if (ctx.Response.HasStarted)
            {
                // Headers are out (a stream that failed mid-way without its own handler): all we can do is end it.
                ctx.Abort();
                return;
            }
            ctx.Response.Clear();
            await ApiHttp.WriteErrorAsync(ctx, api);
        }
    }

    // Health, version and metrics stay open for probes and scrapers, as in vLLM. Decided by path
    // alone, so a route needs its key whatever the method, Content-Type or port it came on.
    private static bool NeedsKey(PathString path) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/tokenize") || path.StartsWithSegments("/detokenize");

    private void CheckKey(HttpContext ctx)
    {
        string? header = ctx.Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            throw new ApiException(401, "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.", "invalid_request_error", null, "invalid_api_key");
        if (!keys.IsValid(header["Bearer ".Length..].Trim()))
            throw new ApiException(401, "Incorrect API key provided.", "invalid_request_error", null, "invalid_api_key");
    }
}

/// <summary>The configured API keys, checked in constant time (HTTP middleware and gRPC alike).</summary>
public sealed class ApiKeys(IOptions<LoomGatewayOptions> options)
{
    // Compared as SHA-256 digests so the time taken depends on neither key's length nor content.
    private readonly byte[][] _hashes = [.. options.Value.ApiKeys.Where(k => k.Length > 0).Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)))];

    public bool Enabled => _hashes.Length > 0;

    public bool IsValid(string presented)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        bool ok = false;
        foreach (var k in _hashes) ok |= CryptographicOperations.FixedTimeEquals(hash, k); // no early exit
        return ok;
    }
}
