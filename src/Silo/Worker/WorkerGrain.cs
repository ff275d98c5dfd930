using System.Runtime.CompilerServices;
using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Hosting;
using Loom.Silo.Worker;
using Orleans.Concurrency;
using Orleans.Placement;

namespace Loom.Silo.Worker;

/// <summary>
/// The silo's worker: a reentrant facade over the silo's <see cref="WorkerEngine"/>. A grain turn
/// only submits, aborts and forwards deltas; model steps run on the engine's own thread.
/// </summary>
[Immovable, Reentrant, SiloPinnedPlacement]
public sealed class WorkerGrain(WorkerEngine worker) : Grain, IWorkerGrain
{
    public async IAsyncEnumerable<TokenDelta> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var engine = worker.Engine;
        int sequences = request.Sampling.N;
        if (!worker.TryStartRequest(sequences, request.RefuseIfFull))
            throw new WorkerBusyException($"the worker's batch is full (engine.max_num_seqs); try another worker");
        IAsyncEnumerable<TokenDelta> stream;
        try
        {
            stream = engine.Submit(request, cancellationToken);
        }
        catch (EngineRequestException e)
        {
            worker.RequestEnded(sequences);
            // A wire type of our own, so the parameter name survives the trip to the gateway.
            // (ArgumentException.Message appends the parameter; the gateway's ArgumentException adds it again.)
            throw new InvalidGenerationRequestException(e.Param, e.Message.Replace($" (Parameter '{e.Param}')", ""));
        }
        catch (Exception)
        {
            worker.RequestEnded(sequences);
            throw;
        }
        bool finished = false;
        try
        {
            await foreach (var delta in stream) yield return delta;
            finished = true;
        }
        finally
        {
            worker.RequestEnded(sequences);
            // The caller broke off (disconnect, cancel): free the request's KV blocks now.
            if (!finished) _ = engine.AbortAsync(request.RequestId);
        }
    }

    public Task<WorkerStats> GetStatsAsync() => Task.FromResult(worker.GetStats());

    public Task<ModelInfo> GetModelInfoAsync() => Task.FromResult(worker.Info);
}
