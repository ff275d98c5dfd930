using Microsoft.Extensions.Configuration;

namespace Loom.Silo.Configuration;

/// <summary>
/// The gateway's settings: the configuration's <c>gateway</c> section binds straight onto this
/// class, and the HTTP/gRPC front door reads the same instance (<c>IOptions&lt;LoomGatewayOptions&gt;</c>).
/// It sits beside <see cref="LoomOptions"/> because one file configures the silo and the gateway,
/// and a silo must know every section to reject typos in it.
/// </summary>
public sealed class LoomGatewayOptions
{
    /// <summary>The address the HTTP and gRPC ports listen on: 0.0.0.0 (every interface), localhost, or an IP.</summary>
    [ConfigurationKeyName("host")] public string Host { get; set; } = "0.0.0.0";
    [ConfigurationKeyName("http_port")] public int HttpPort { get; set; } = 8000;

    /// <summary>The gRPC API's own HTTP/2-only port (h2c and HTTP/1.1 cannot share a cleartext port); 0 = no gRPC.</summary>
    [ConfigurationKeyName("grpc_port")] public int GrpcPort { get; set; } = 8001;

    /// <summary>Accepted bearer keys; empty means no authentication (as vLLM without --api-key). Empty strings are ignored.</summary>
    [ConfigurationKeyName("api_keys")] public List<string> ApiKeys { get; set; } = [];

    /// <summary>Largest accepted request body; larger ones get 413 before being parsed.</summary>
    [ConfigurationKeyName("max_body_bytes")] public long MaxBodyBytes { get; set; } = 1 << 20;

    /// <summary>Seconds a request may wait for its first token (queueing included) before a 504; 0 = no deadline.</summary>
    [ConfigurationKeyName("first_token_timeout_s")] public double FirstTokenTimeoutSeconds { get; set; } = 120;

    /// <summary>
    /// Generation requests (completions, chat, gRPC Generate) open on this gateway at once; one
    /// more is answered 429 with Retry-After at once, never queued. 0 = unlimited. The workers' own
    /// queues (engine.max_waiting) push back behind it. As TGI's --max-concurrent-requests, but
    /// sized for a gateway in front of several workers.
    /// </summary>
    [ConfigurationKeyName("max_concurrent_requests")] public int MaxConcurrentRequests { get; set; } = 1024;

    // Per-request input limits. Each one past its limit is a 400 naming the parameter. They bound
    // what one request costs the gateway and its worker: every choice scans the stop strings at
    // every token, and the worker checks every sampled token against stop_token_ids.

    /// <summary>Most choices one request may ask for (n, and prompts × n), so one request cannot flood the cluster.</summary>
    [ConfigurationKeyName("max_choices_per_request")] public int MaxChoicesPerRequest { get; set; } = 128;

    /// <summary>Most stop strings ("stop"); OpenAI allows 4.</summary>
    [ConfigurationKeyName("max_stop_strings")] public int MaxStopStrings { get; set; } = 16;

    /// <summary>Longest stop string, in UTF-16 characters (the matcher's work per token grows with it).</summary>
    [ConfigurationKeyName("max_stop_string_length")] public int MaxStopStringLength { get; set; } = 256;

    [ConfigurationKeyName("max_stop_token_ids")] public int MaxStopTokenIds { get; set; } = 128;
    [ConfigurationKeyName("max_logit_bias")] public int MaxLogitBias { get; set; } = 300;

    /// <summary>
    /// The model id clients use; null means the worker's model name (which stays accepted as an
    /// alias). Not a key of its own: the host sets it from model.name.
    /// </summary>
    public string? ServedModelName { get; set; }

    /// <summary>hermes, llama3_json or mistral; null = chosen from the model's architecture and chat template. The host sets it from model.tool_call_parser.</summary>
    public string? ToolCallParser { get; set; }

    /// <summary>The first invalid setting as (key within the gateway section, message), or null when all are valid.</summary>
    public (string Key, string Message)? Validate()
    {
        if (Host is not ("" or "0.0.0.0" or "*" or "::" or "[::]" or "localhost") && !System.Net.IPAddress.TryParse(Host, out _))
            return ("host", $"must be 0.0.0.0, localhost or an IP address, got '{Host}'");
        if (HttpPort is < 0 or > 65535) return ("http_port", $"must be a port number, got {HttpPort}");
        if (GrpcPort is < 0 or > 65535) return ("grpc_port", $"must be a port number (0 = no gRPC), got {GrpcPort}");
        if (MaxBodyBytes < 1) return ("max_body_bytes", $"must be positive, got {MaxBodyBytes}");
        if (!(FirstTokenTimeoutSeconds >= 0)) return ("first_token_timeout_s", $"must be 0 (none) or positive, got {FirstTokenTimeoutSeconds}");
        if (MaxConcurrentRequests < 0) return ("max_concurrent_requests", $"must be 0 (unlimited) or positive, got {MaxConcurrentRequests}");
        if (MaxChoicesPerRequest < 1) return ("max_choices_per_request", $"must be at least 1, got {MaxChoicesPerRequest}");
        if (MaxStopStrings < 0) return ("max_stop_strings", $"must not be negative, got {MaxStopStrings}");
        if (MaxStopStringLength < 1) return ("max_stop_string_length", $"must be at least 1, got {MaxStopStringLength}");
        if (MaxStopTokenIds < 0) return ("max_stop_token_ids", $"must not be negative, got {MaxStopTokenIds}");
        if (MaxLogitBias < 0) return ("max_logit_bias", $"must not be negative, got {MaxLogitBias}");
        return null;
    }
}
