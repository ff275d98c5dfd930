using Loom.Silo.Configuration;
using Loom.Gateway.Serving;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// gateway.max_concurrent_requests: counts the generation requests open on this gateway. One past
/// the limit is refused at once (429 with Retry-After) rather than queued, so a flood never makes a
/// request wait without a deadline; the workers' bounded queues push back behind it.
/// </summary>
public sealed class RequestGate(IOptions<LoomGatewayOptions> options)
{
    /// <summary>What the 429 tells the client: a slot frees as soon as any request ends.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private int _open;

    /// <summary>Requests holding a slot now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>A slot for one request, released on Dispose; <see cref="TooManyRequestsException"/> when none is free.</summary>
    public IDisposable Enter()
    {
        int max = options.Value.MaxConcurrentRequests;
        int now = Interlocked.Increment(ref _open);
        if (max > 0 && now > max)
        {
            Interlocked.Decrement(ref _open);
            throw new TooManyRequestsException($"this gateway is serving its limit of {max} concurrent requests (gateway.max_concurrent_requests)", RetryAfter);
        }
        return new Slot(this);
    }

    private sealed class Slot(RequestGate gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Interlocked.Decrement(ref gate._open);
        }
    }
}
