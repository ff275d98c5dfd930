using Loom.Silo.Simulation;
using Loom.Grains.Abstractions;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

/// <summary>
/// Engine fault containment: a step that throws fails the requests it ran, and only them; the KV
/// pool returns to what the survivors hold and the next request is served. Repeated failures, or a
/// device error, make the worker sick: it fails over what it holds and refuses new work.
/// </summary>
public sealed class FaultEngineTests
{
    private static EngineLoop Engine(FaultPlan plan, EngineOptions? options = null, Func<IModelRunner, IModelRunner>? wrap = null) =>
        new(SimulatedModelRunner.Config(256, 2048), options ?? new EngineOptions { NumBlocks = 256 }, (_, _, _) =>
        {
            IModelRunner r = new FaultInjectingRunner(new SimulatedModelRunner(256, 0, 0), plan);
            return wrap?.Invoke(r) ?? r;
        }, startThread: false);

    private static GenerationRequest Request(string id, int promptSeed, int maxTokens = 8, int n = 1) =>
        new(id, EngineDriver.Prompt(promptSeed, 20, 256), new SamplingParams { MaxTokens = maxTokens, IgnoreEos = true, N = n, Temperature = n > 1 ? 1f : 0f, Seed = 3 });

    /// <summary>Drains a stream to its end: the tokens, or the exception that ended it.</summary>
    private static (List<int> Tokens, Exception? Error) Drain(IAsyncEnumerable<TokenDelta> stream)
    {
        var tokens = new List<int>();
        var e = stream.GetAsyncEnumerator();
        try
        {
            while (e.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult())
                if (e.Current.TokenId >= 0) tokens.Add(e.Current.TokenId);
            return (tokens, null);
        }
        catch (Exception ex) when (ex is not TimeoutException)
        {
            return (tokens, ex);
        }
    }

    private static void StepUntilIdle(EngineLoop engine)
    {
        for (int i = 0; i < 10_000 && engine.Step(); i++) { }
    }

    [Fact]
    public void FaultOnStepNFailsItsRequestsFreesTheirBlocksAndTheNextRequestIsServed()
    {
        using var engine = Engine(new FaultPlan { FailSteps = new HashSet<long> { 3 } });
        var survivor = engine.Submit(Request("early", 1, maxTokens: 2));
        StepUntilIdle(engine); // steps 0-1: the early request runs alone and finishes
        var a = engine.Submit(Request("a", 2));
        var b = engine.Submit(Request("b", 3, n: 2));
        StepUntilIdle(engine); // step 2 runs both; step 3 throws
        Assert.Null(Drain(survivor).Error);
        foreach (var s in new[] { a, b })
        {
            var (_, error) = Drain(s);
            Assert.IsType<GenerationStepFailedException>(error);
        }
        Assert.Equal(0, engine.GetStats().UsedBlocks);
        Assert.Equal(0, engine.GetStats().Running + engine.GetStats().Waiting);
        Assert.Equal(1, engine.FailedSteps);
        Assert.Null(engine.SickReason);

        var next = engine.Submit(Request("next", 4));
        StepUntilIdle(engine);
        var (tokens, err) = Drain(next);
        Assert.Null(err);
        Assert.Equal(8, tokens.Count);
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }

    [Fact]
    public void FaultStepsFailOnlyTheRequestsThatRanInThem()
    {
        // A poison request fails its steps; a healthy request after it is gone is unaffected, and one
        // failure is not a sick worker.
        using var engine = Engine(new FaultPlan { PoisonTokenId = 255 });
        var poisoned = Request("poison", 5) with { PromptTokenIds = [1, 2, 255, 4] };
        var p = engine.Submit(poisoned);
        StepUntilIdle(engine);
        Assert.IsType<GenerationStepFailedException>(Drain(p).Error);
        var ok = engine.Submit(Request("ok", 6));
        StepUntilIdle(engine);
        Assert.Null(Drain(ok).Error);
        Assert.Null(engine.SickReason);
    }

    [Fact]
    public void FaultRepeatedFailuresMakeTheWorkerSickAndItRefusesNewWork()
    {
        bool failing = true;
        using var engine = Engine(new FaultPlan { FailAll = () => failing }, new EngineOptions { NumBlocks = 256, MaxConsecutiveStepFailures = 3 });
        // A queued request waits behind the batch limit; when the worker turns sick it fails over too.
        for (int i = 0; i < 3; i++)
        {
            Assert.Null(engine.SickReason);
            var s = engine.Submit(Request($"r{i}", 10 + i));
            StepUntilIdle(engine);
            Assert.IsType<GenerationStepFailedException>(Drain(s).Error);
        }
        Assert.Contains("3 engine steps in a row failed", engine.SickReason);
        Assert.False(engine.IsAlive);
        var refused = Assert.Throws<WorkerUnavailableException>(() => engine.Submit(Request("late", 20)));
        Assert.Contains("unhealthy", refused.Message);
        failing = false; // even if the fault goes away, a sick worker stays out until it is restarted
        Assert.Throws<WorkerUnavailableException>(() => engine.Submit(Request("later", 21)));
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }

    [Fact]
    public void FaultASuccessfulStepResetsTheFailureCount()
    {
        using var engine = Engine(new FaultPlan { FailSteps = new HashSet<long> { 0, 1, 3, 4, 6, 7 } }, new EngineOptions { NumBlocks = 256, MaxConsecutiveStepFailures = 3 });
        // One step per request (max_tokens 1): steps 2 and 5 succeed between pairs of failures.
        for (int i = 0; i < 8; i++)
        {
            var s = engine.Submit(Request($"r{i}", i, maxTokens: 1));
            StepUntilIdle(engine);
            Drain(s);
        }
        Assert.Null(engine.SickReason);
        Assert.Equal(6, engine.FailedSteps);
    }

    [Fact]
    public void FaultADeviceErrorMakesTheWorkerSickAtOnceAndFailsOverWhatItHolds()
    {
        bool broken = false;
        using var engine = Engine(new FaultPlan(), new EngineOptions { NumBlocks = 256, MaxNumSeqs = 1 }, wrap: r => new ThrowingRunner(r, () => broken
            ? new Loom.Kernels.Cuda.Interop.CudaException("cuLaunchKernel", 700, "an illegal memory access was encountered")
            : null));
        var running = engine.Submit(Request("running", 1, maxTokens: 50));
        engine.Step();
        var queued = engine.Submit(Request("queued", 2)); // the batch holds one: this one waits
        broken = true;
        StepUntilIdle(engine);
        Assert.StartsWith("device error", engine.SickReason);
        Assert.False(engine.IsAlive);
        Assert.IsType<GenerationStepFailedException>(Drain(running).Error);
        // Not at fault, so not a step failure: the gateway resumes it on another worker.
        Assert.IsType<WorkerUnavailableException>(Drain(queued).Error);
        Assert.Throws<WorkerUnavailableException>(() => engine.Submit(Request("late", 3)));
        Assert.Equal(0, engine.GetStats().UsedBlocks);
    }

    [Fact]
    public void LimitsNMustFitTheBatch()
    {
        using var engine = Engine(new FaultPlan(), new EngineOptions { NumBlocks = 256, MaxNumSeqs = 4 });
        var e = Assert.Throws<EngineRequestException>(() => engine.Submit(Request("big", 1, n: 5)));
        Assert.Equal("n", e.ParamName);
        Assert.Contains("max_num_seqs", e.Message);
        var ok = engine.Submit(Request("fits", 1, n: 4));
        StepUntilIdle(engine);
        Assert.Null(Drain(ok).Error);
    }

    /// <summary>
    /// 100,000 stop ids on an n = 8 request once cost the engine thread seconds (a quadratic
    /// de-duplication per sample). The stop set is now built once, by the submitter: engine steps
    /// with such a request in the batch cost what steps with a plain one do. Compared within the test
    /// as CPU time of the same steps with and without the list, no absolute times (the steps run on
    /// the test thread here; the process's CPU time is the measure).
    /// </summary>
    [Fact]
    public void LimitsLargeStopTokenIdsDoNotStallTheEngineThread()
    {
        double Measure(IReadOnlyList<int> stops)
        {
            using var engine = Engine(new FaultPlan());
            var big = new GenerationRequest("big", EngineDriver.Prompt(1, 20, 256),
                new SamplingParams { N = 8, MaxTokens = 4, IgnoreEos = true, Temperature = 1f, Seed = 1, StopTokenIds = stops });
            var stream = engine.Submit(big);
            var small = engine.Submit(Request("small", 2, maxTokens: 3));
            var before = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            StepUntilIdle(engine);
            double used = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - before).TotalMilliseconds;
            Assert.Null(Drain(stream).Error);
            Assert.Null(Drain(small).Error);
            return used;
        }

        // Ids past the simulated vocabulary never stop a sequence, so both runs do the same steps.
        var many = Enumerable.Range(0, 100_000).Select(i => 256 + i % 50_000).ToArray();
        Measure([]); // warm-up: JIT
        double plain = Enumerable.Range(0, 3).Min(_ => Measure([]));
        double heavy = Enumerable.Range(0, 3).Min(_ => Measure(many));
        Assert.True(heavy < plain * 3 + 30, $"steps with 100,000 stop ids took {heavy:F1} ms of CPU vs {plain:F1} ms without");
    }

    private sealed class ThrowingRunner(IModelRunner inner, Func<Exception?> fault) : IModelRunner
    {
        public ReadOnlySpan<SampleResult> Execute(SchedulerOutput step) => fault() is { } e ? throw e : inner.Execute(step);
        public void Dispose() => inner.Dispose();
    }
}
