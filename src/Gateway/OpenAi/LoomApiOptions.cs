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

    /// <summary>Most choices one request may ask for (prompts × n), so one request cannot flood the cluster.</summary>
    public int MaxChoicesPerRequest { get; set; } = 128;

    /// <summary>Whether MapLoomApi maps the gRPC service.</summary>
    public bool EnableGrpc { get; set; } = true;

    /// <summary>When set, the gRPC service answers only on this port (the host listens on it with HTTP/2 only).</summary>
    public int? GrpcPort { get; set; }
}
