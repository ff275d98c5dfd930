using System.Diagnostics;
using Loom.Silo.Simulation;
using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

public sealed class SimulatedModelRunnerTests
{
    private static EngineLoop NewEngine(double overheadMs, double perTokenMs, bool thread = false) =>
        new(SimulatedModelRunner.Config(256, 2048), new EngineOptions { NumBlocks = 1024 },
            (_, _, _) => new SimulatedModelRunner(256, overheadMs, perTokenMs), startThread: thread);

    [Fact]
    public void GreedyOutputIsDeterministicAndResumable()
    {
        var prompt = EngineDriver.Prompt(9, 40, 256);
        var p = new SamplingParams { MaxTokens = 30, Temperature = 0 };
        using var a = NewEngine(0, 0);
        var full = EngineDriver.RunAll(a, [new GenerationRequest("x", prompt, p)])["x"].Tokens[0];
        Assert.Equal(30, full.Count);
        Assert.DoesNotContain(0, full); // the simulated model never emits its EOS id
        using var b = NewEngine(0, 0);
        var rest = EngineDriver.RunAll(b, [new GenerationRequest("x", prompt, p, ResumeTokenIds: full.Take(11).ToArray())])["x"].Tokens[0];
        Assert.Equal(full.Skip(11), rest);
    }

    [Fact]
    public async Task StepTimeFollowsTheCostModel()
    {
        // 20 decode steps of one token at 5 ms + a 100-token prefill at 0.05 ms/token: about 105 ms.
        using var e = NewEngine(5, 0.05, thread: true);
        var sw = Stopwatch.StartNew();
        int n = 0;
        await foreach (var _ in e.Submit(new GenerationRequest("x", EngineDriver.Prompt(1, 100, 256), new SamplingParams { MaxTokens = 20, Temperature = 0 }))) n++;
        Assert.Equal(20, n);
        // Never faster than the model; the upper bound is loose because a loaded 2-core machine oversleeps.
        Assert.InRange(sw.Elapsed.TotalMilliseconds, 95, 3000);
    }
}
