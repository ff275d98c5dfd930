using System.Threading.Channels;
using Loom.Grains.Abstractions;

using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// The engine's side of one submitted request: its sequences (one per sample: n &gt; 1 runs as n
/// child sequences that share the prompt through the prefix cache) and the channel its token
/// deltas flow through to the caller. Written only by the engine thread, except the abort flag.
/// </summary>
public sealed class RequestState
{
    private readonly Channel<TokenDelta> _channel = Channel.CreateUnbounded<TokenDelta>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    public RequestState(GenerationRequest request, long arrival, ReadOnlySpan<int> eosTokenIds = default)
    {
        Request = request;
        Arrival = arrival;
        PromptArray = request.PromptTokenIds as int[] ?? [.. request.PromptTokenIds];
        StopIds = SamplingState.StopSet(request.Sampling, eosTokenIds);
    }

    public GenerationRequest Request { get; }
    public long Arrival { get; }
    public int[] PromptArray { get; }

    /// <summary>The stop-id set every sample shares (see <see cref="SamplingState.StopSet"/>), built by the submitter.</summary>
    public int[] StopIds { get; }

    public List<Sequence> Sequences { get; } = [];
    public int FinishedSequences { get; set; }

    /// <summary>Set by Abort from any thread; the engine thread frees the blocks at its next step.</summary>
    public volatile bool AbortRequested;

    public ChannelReader<TokenDelta> Reader => _channel.Reader;

    public void Emit(TokenDelta delta) => _channel.Writer.TryWrite(delta);

    /// <summary>Streams one sampled token of <paramref name="seq"/>; true when it finished the request's last sequence.</summary>
    public bool Deliver(Sequence seq, SampleResult r, FinishReason? finish)
    {
        Emit(new TokenDelta(seq.Index, r.Token, r.Logprob, r.TopLogprobs, finish));
        return finish is not null && ++FinishedSequences == Request.Sampling.N;
    }

    public void Complete(Exception? error = null) => _channel.Writer.TryComplete(error);

    public bool IsFinished => FinishedSequences == Request.Sampling.N;
}
