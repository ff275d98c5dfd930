using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;

namespace Loom.Gateway.OpenAi;

/// <summary>Request-body reading, JSON and error responses, and SSE framing for the endpoints.</summary>
internal static class ApiHttp
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    /// <summary>Reads the whole body (at most <paramref name="maxBytes"/>) and parses it as JSON.</summary>
    public static async Task<JsonDocument> ReadJsonAsync(HttpContext ctx, long maxBytes)
    {
        if (ctx.Request.ContentLength > maxBytes) throw await TooLargeAsync(ctx, maxBytes);
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(ctx.Request.ContentLength ?? 4096, maxBytes) + 1);
        var body = ctx.Request.Body;
        while (true)
        {
            var mem = buffer.GetMemory(8192);
            int read = await body.ReadAsync(mem, ctx.RequestAborted);
            if (read == 0) break;
            buffer.Advance(read);
            if (buffer.WrittenCount > maxBytes) throw await TooLargeAsync(ctx, maxBytes);
        }
        if (buffer.WrittenCount == 0) throw ApiException.BadRequest("The request body is empty; send a JSON object.");
        // JsonDocument checks UTF-8 only when a string is read, which would surface as a 500 deep inside.
        if (!System.Text.Unicode.Utf8.IsValid(buffer.WrittenSpan))
            throw ApiException.BadRequest("The request body is not valid UTF-8.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(buffer.WrittenMemory, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            // The parser's message names the position only (never echoes content), so it is safe to return.
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}");
        }
        try
        {
            CheckEscapes(buffer.WrittenSpan);
        }
        catch
        {
            doc.Dispose();
            throw;
        }
        return doc;
    }

    /// <summary>
    /// A \u escape of a lone UTF-16 surrogate ("\ud800") parses, but reading that string later
    /// throws InvalidOperationException deep inside an endpoint: an internal error (500) for what is
    /// the client's bad input. So every escaped string is unescaped once here, and such a body is a 400.
    /// </summary>
    private static void CheckEscapes(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try
            {
                reader.GetString();
            }
            catch (InvalidOperationException)
            {
                throw ApiException.BadRequest($"The JSON body has a string with an invalid \\u escape (a lone UTF-16 surrogate) at byte {reader.TokenStartIndex}.");
            }
        }
    }

    private static ApiException TooLarge(long max) =>
        new(413, $"The request body exceeds the limit of {max} bytes.", "invalid_request_error", null, "request_too_large");

    /// <summary>
    /// The 413, after reading and discarding the rest of a moderately oversize body: a client still
    /// sending when the server closes gets a TCP reset instead of the answer. Past 4x the limit
    /// (at least 4 MiB) the connection is closed after the answer rather than read to the end.
    /// </summary>
    private static async Task<ApiException> TooLargeAsync(HttpContext ctx, long max)
    {
        long cap = Math.Max(4 * max, 4L << 20), seen = 0;
        var scratch = new byte[16384];
        try
        {
            int n;
            while (seen <= cap && (n = await ctx.Request.Body.ReadAsync(scratch, ctx.RequestAborted)) > 0) seen += n;
        }
        catch (Exception e) when (e is IOException or Microsoft.AspNetCore.Http.BadHttpRequestException) { seen = long.MaxValue; }
        if (seen > cap) ctx.Response.Headers.Connection = "close";
        return TooLarge(max);
    }

    public static Task WriteErrorAsync(HttpContext ctx, ApiException e)
    {
        ctx.Response.StatusCode = e.Status;
        if (e.RetryAfter is { } ra)
            ctx.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(ra.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        return WriteJsonAsync(ctx, ToEnvelope(e), ApiJsonContext.Default.ErrorEnvelope, e.Status);
    }

    public static ErrorEnvelope ToEnvelope(ApiException e) => new(new ErrorBody(e.Message, e.Type, e.Param, e.Code));

    public static async Task WriteJsonAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> info, int status = 200)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, info, ctx.RequestAborted);
    }

    public static async Task StartSseAsync(HttpContext ctx)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        // Reverse proxies (nginx) must not buffer a token stream.
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await ctx.Response.StartAsync(ctx.RequestAborted);
    }

    /// <summary>One event, exactly as OpenAI frames it: "data: {json}\n\n", flushed at once.</summary>
    public static async Task WriteSseAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> info)
    {
        var w = ctx.Response.BodyWriter;
        w.Write(DataPrefix);
        using (var json = new Utf8JsonWriter(w)) JsonSerializer.Serialize(json, value, info);
        w.Write(EventEnd);
        await w.FlushAsync(ctx.RequestAborted);
    }

    public static async Task WriteSseDoneAsync(HttpContext ctx)
    {
        await ctx.Response.BodyWriter.WriteAsync(Done, ctx.RequestAborted);
    }
}
