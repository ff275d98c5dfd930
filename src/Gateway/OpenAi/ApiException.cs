namespace Loom.Gateway.OpenAi;

/// <summary>
/// An error that reaches the client in OpenAI's shape {"error":{"message","type","param","code"}}.
/// Thrown anywhere below an endpoint; the API middleware (or the SSE writer, once streaming has
/// started) turns it into the response.
/// </summary>
public sealed class ApiException(int status, string message, string type, string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public TimeSpan? RetryAfter { get; init; }

    public static ApiException BadRequest(string message, string? param = null, string? code = null) =>
        new(400, message, "invalid_request_error", param, code);

    public static ApiException ModelNotFound(string model) =>
        new(404, $"The model `{model}` does not exist.", "invalid_request_error", "model", "model_not_found");
}

/// <summary>The worker reported a failure for a running request (a delta with an error or an abort).</summary>
public sealed class GenerationFailedException(string message) : Exception(message);
