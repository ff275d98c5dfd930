namespace Loom.Gateway.OpenAi;

/// <summary>
/// The HTTP/gRPC front door's settings, bound by the host from configuration (section
/// "Api" by convention) and the command line. Mutable setters so the .NET configuration binder
/// and <c>services.Configure</c> can fill it.
/// </summary>
public sealed record LoomApiOptions
{
    /// <summary>Accepted bearer keys; empty means no authentication (as vLLM without --api-key).</summary>
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>Largest accepted request body; larger ones get 413 before being parsed.</summary>
    public long MaxBodyBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>The model id clients use; null means <c>ModelInfo.Name</c> (which stays accepted as an alias).</summary>
    public string? ServedModelName { get; set; }

    /// <summary>Most choices one request may ask for (n, and prompts × n), so one request cannot flood the cluster.</summary>
    public int MaxChoicesPerRequest { get; set; } = 128;

    /// <summary>
    /// gateway.max_concurrent_requests: generation requests (completions, chat, gRPC Generate) open
    /// on this gateway at once; one more is answered 429 with Retry-After at once, never queued.
    /// 0 = unlimited. The workers' own queues (engine.max_waiting) push back behind it.
    /// </summary>
    public int MaxConcurrentRequests { get; set; } = DefaultMaxConcurrentRequests;

    /// <summary>As TGI's --max-concurrent-requests, but sized for a gateway in front of several workers.</summary>
    public const int DefaultMaxConcurrentRequests = 1024;

    // Per-request input limits. Each one past its limit is a 400 naming the parameter. They bound
    // what one request costs the gateway and its worker: every choice scans the stop strings at
    // every token, and the worker checks every sampled token against stop_token_ids.

    /// <summary>Most stop strings ("stop"); OpenAI allows 4.</summary>
    public int MaxStopStrings { get; set; } = 16;

    /// <summary>Longest stop string, in UTF-16 characters (the matcher's work per token grows with it).</summary>
    public int MaxStopStringLength { get; set; } = 256;

    /// <summary>Most stop_token_ids.</summary>
    public int MaxStopTokenIds { get; set; } = 128;

    /// <summary>Most logit_bias entries.</summary>
    public int MaxLogitBias { get; set; } = 300;

    /// <summary>model.tool_call_parser: hermes, llama3_json or mistral; null = chosen from the model's architecture and chat template.</summary>
    public string? ToolCallParser { get; set; }

    /// <summary>Whether MapLoomApi maps the gRPC service.</summary>
    public bool EnableGrpc { get; set; } = true;

    /// <summary>When set, the gRPC service answers only on this port (the host listens on it with HTTP/2 only).</summary>
    public int? GrpcPort { get; set; }
}
