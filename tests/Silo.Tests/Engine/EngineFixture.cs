using Loom.Grains.Abstractions;
using Loom.Kernels.Cpu;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Engine;

/// <summary>A tiny random model on the CPU backend, shared by the engine tests of one class.</summary>
public sealed class EngineFixture : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-engine-").FullName;

    public EngineFixture()
    {
        // Vocab 512 and 2 layers keep steps fast; max_pos 512 bounds max_model_len.
        ModelGenerator.Generate(ModelPresets.Tiny with { Vocab = 512 }, _dir, new GenerateOptions { Seed = 5 });
        Backend = new CpuBackend(2);
        Model = LlamaModel.Load(_dir, Backend);
    }

    public CpuBackend Backend { get; }
    public LlamaModel Model { get; }

    public EngineLoop NewEngine(EngineOptions? options = null) => new(Model, options ?? new EngineOptions { NumBlocks = 256 }, startThread: false);

    public void Dispose()
    {
        Model.Dispose();
        Backend.Dispose();
        Directory.Delete(_dir, true);
    }
}

/// <summary>Drives an engine without its thread, step by step, and collects every stream.</summary>
internal static class EngineDriver
{
    public sealed record Output(List<int>[] Tokens, List<TokenDelta> Deltas);

    public static int[] Prompt(int seed, int length, int vocab = 512)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => rng.Next(vocab)).ToArray();
    }

    public static Dictionary<string, Output> RunAll(EngineLoop engine, IEnumerable<GenerationRequest> requests, int maxSteps = 100_000)
    {
        var streams = requests.Select(r => (r.RequestId, Stream: engine.Submit(r), N: r.Sampling.N)).ToList();
        for (int i = 0; i < maxSteps && engine.Step(); i++) { }
        return streams.ToDictionary(s => s.RequestId, s => Collect(s.Stream, s.N));
    }

    public static Output Collect(IAsyncEnumerable<TokenDelta> stream, int n)
    {
        var tokens = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var deltas = new List<TokenDelta>();
        var e = stream.GetAsyncEnumerator();
        while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult())
        {
            deltas.Add(e.Current);
            if (e.Current.TokenId >= 0) tokens[e.Current.Index].Add(e.Current.TokenId);
        }
        return new Output(tokens, deltas);
    }
}
