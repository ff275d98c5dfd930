using Loom.Kernels;
using Loom.Kernels.Collectives;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// Tensor parallelism on the in-process communicator: the sharding logic (column-parallel q/k/v
/// and gate/up, row-parallel o/down with an all-reduce) gives TP=1's logits at TP=2 and TP=4.
/// </summary>
public sealed class TensorParallelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-tp-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void InProcessAllReduceSumsOverRanksIdenticallyEveryTime()
    {
        const int world = 3, n = 1000;
        var comms = InProcessCommunicator.CreateGroup(world);
        using var backends = new Disposables<CpuBackend>([.. Enumerable.Range(0, world).Select(_ => new CpuBackend(1))]);
        var inputs = Enumerable.Range(0, world).Select(r => Enumerable.Range(0, n).Select(i => (float)Math.Sin(r * 7 + i * 0.1)).ToArray()).ToArray();
        var results = new float[world][];
        RunRanks(world, r =>
        {
            for (int round = 0; round < 3; round++)
            {
                using var t = backends.Items[r].Allocate(DType.F32, n);
                inputs[r].CopyTo(t.AsFloatSpan());
                comms[r].AllReduceSum(t);
                results[r] = t.AsFloatSpan().ToArray();
            }
        });
        for (int i = 0; i < n; i++)
        {
            float expected = inputs[0][i] + inputs[1][i] + inputs[2][i];
            Assert.Equal(expected, results[0][i], 5);
        }
        Assert.Equal(results[0], results[1]); // bit-identical on every rank
        Assert.Equal(results[0], results[2]);
    }

    [Fact]
    public void MismatchedSizesFailOnEveryRank()
    {
        var comms = InProcessCommunicator.CreateGroup(2);
        using var b = new CpuBackend(1);
        var errors = new Exception?[2];
        RunRanks(2, r =>
        {
            using var t = b.Allocate(DType.F32, r == 0 ? 8 : 9);
            try { comms[r].AllReduceSum(t); }
            catch (ArgumentException e) { errors[r] = e; }
        });
        Assert.All(errors, e => Assert.Contains("size mismatch", e!.Message));
    }

    [Theory]
    [InlineData("tiny", 2)]
    [InlineData("tiny", 4)]
    [InlineData("tiny-qwen2", 2)]
    [InlineData("tiny-qwen2", 4)]
    public void ShardedLogitsEqualTheUnshardedModel(string basePreset, int tp)
    {
        // 8 heads, 4 kv heads, 128 MLP columns: divisible by 4. Qwen2 adds sharded q/k/v biases.
        var preset = ModelPresets.Get(basePreset) with { Name = basePreset + "-tp", Heads = 8, KvHeads = 4, HeadDim = 8 };
        var dir = Path.Combine(_dir, preset.Name);
        if (!File.Exists(Path.Combine(dir, "config.json"))) ModelGenerator.Generate(preset, dir, new GenerateOptions { Seed = 11 });

        using var one = TensorParallelModel.Load(dir, 1, _ => new CpuBackend(1), numBlocks: 16, blockSize: 4);
        using var many = TensorParallelModel.Load(dir, tp, _ => new CpuBackend(1), numBlocks: 16, blockSize: 4);
        Assert.Equal(tp, many.WorldSize);
        var rng = new Random(5);
        int[] a = [.. Enumerable.Range(0, 12).Select(_ => rng.Next(1, preset.Vocab))];
        int[] b = [.. Enumerable.Range(0, 7).Select(_ => rng.Next(1, preset.Vocab))];
        // Step 1: two prefills; step 2: a decode of A mixed with B's next prefill chunk; step 3: both decode.
        var steps = new List<(int Seq, int[] Tokens, int Start)[]>
        {
            new[] { (0, a[..9], 0), (1, b[..5], 0) },
            new[] { (0, a[9..10], 9), (1, b[5..7], 5) },
            new[] { (0, a[10..12], 10), (1, new[] { 3 }, 7) },
        };
        foreach (var step in steps)
        {
            var batch = Batch(step, maxBlocks: 8, blockSize: 4);
            var expected = one.ForwardToHost(batch);
            var got = many.ForwardToHost(batch);
            Assert.Equal(expected.Length, got.Length);
            float scale = expected.Max(MathF.Abs);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(MathF.Abs(expected[i] - got[i]) <= 1e-5f + 1e-5f * scale, $"logit {i}: TP={tp} {got[i]} vs TP=1 {expected[i]}");
        }
    }

    /// <summary>A quantized GGUF under tensor parallelism shards bf16 copies; TP=2 gives TP=1's logits on the same file.</summary>
    [Fact]
    public void GgufShardedLogitsEqualTheUnshardedModel()
    {
        var preset = ModelPresets.Get("tiny") with { Name = "tiny-tp-gguf", Heads = 8, KvHeads = 4, HeadDim = 8 };
        var dir = Path.Combine(_dir, preset.Name);
        var gguf = Path.Combine(_dir, preset.Name + ".gguf");
        ModelGenerator.Generate(preset, dir, new GenerateOptions { Seed = 11, GgufPath = gguf, GgufType = GgufType.Q8_0 });
        using var one = TensorParallelModel.Load(gguf, 1, _ => new CpuBackend(1), numBlocks: 16, blockSize: 4);
        using var two = TensorParallelModel.Load(gguf, 2, _ => new CpuBackend(1), numBlocks: 16, blockSize: 4);
        var batch = Batch(new[] { (0, new[] { 5, 9, 100, 7, 3 }, 0) }, maxBlocks: 8, blockSize: 4);
        var expected = one.ForwardToHost(batch);
        var got = two.ForwardToHost(batch);
        float scale = expected.Max(MathF.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(MathF.Abs(expected[i] - got[i]) <= 1e-5f + 1e-5f * scale, $"logit {i}: TP=2 {got[i]} vs TP=1 {expected[i]}");
    }

    [Fact]
    public void ShardCountsThatDoNotDivideAreClearErrors()
    {
        var dir = Path.Combine(_dir, "tiny");
        ModelGenerator.Generate(ModelPresets.Get("tiny"), dir, new GenerateOptions { Seed = 1 });
        var c = ModelConfig.Load(dir); // 4 heads, 2 kv heads
        var e = Assert.Throws<ArgumentException>(() => TensorParallel.ShardConfig(c, 4));
        Assert.Contains("num_key_value_heads 2", e.Message);
        Assert.Contains("num_attention_heads 4", Assert.Throws<ArgumentException>(() => TensorParallel.ShardConfig(c, 3)).Message);
        var two = TensorParallel.ShardConfig(c, 2);
        Assert.Equal((2, 1, c.IntermediateSize / 2, c.HiddenSize), (two.NumHeads, two.NumKvHeads, two.IntermediateSize, two.HiddenSize));
    }

    /// <summary>
    /// A shard that fails inside a forward must not leave its partner waiting in an all-reduce for
    /// the communicator's 60 s timeout: the group is aborted at once, the error names the cause, and
    /// the model refuses further work (the group is no longer consistent).
    /// </summary>
    [Fact]
    public void AFailingShardReleasesItsPartnerAtOnceAndTheGroupStaysFailed()
    {
        var preset = ModelPresets.Tiny with { Name = "tiny-tp-fail", Heads = 8, KvHeads = 4, HeadDim = 8 };
        var dir = Path.Combine(_dir, preset.Name);
        ModelGenerator.Generate(preset, dir, new GenerateOptions { Seed = 11 });
        var group = InProcessCommunicator.CreateGroup(2);
        ICommunicator[] comms = [group[0], new FailingCommunicator(group[1], failAt: 3)];
        using var model = TensorParallelModel.Load(dir, 2, _ => new CpuBackend(1), numBlocks: 16, blockSize: 4, communicators: _ => comms);
        var batch = Batch([(0, [5, 6, 7], 0)], maxBlocks: 8, blockSize: 4);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<AggregateException>(() => model.ForwardToHost(batch));
        Assert.Equal("injected all-reduce failure", e.InnerException!.Message);
        // Without the abort, rank 0 would sit in the barrier for InProcessCommunicator.Timeout (60 s).
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"the forward failed only after {sw.Elapsed.TotalSeconds:F0} s");
        Assert.Throws<InvalidOperationException>(() => model.ForwardToHost(batch));
    }

    private sealed class FailingCommunicator(ICommunicator inner, int failAt) : ICommunicator
    {
        private int _calls;
        public int Rank => inner.Rank;
        public int WorldSize => inner.WorldSize;

        public void AllReduceSum(Tensor tensor)
        {
            if (++_calls == failAt) throw new InvalidOperationException("injected all-reduce failure");
            inner.AllReduceSum(tensor);
        }

        public void Abort() => inner.Abort();
        public void Dispose() => inner.Dispose();
    }

    private static ForwardBatch Batch((int Seq, int[] Tokens, int Start)[] chunks, int maxBlocks, int blockSize)
    {
        var b = new ForwardBatch();
        int tokens = chunks.Sum(c => c.Tokens.Length);
        b.EnsureCapacity(tokens, chunks.Length, maxBlocks);
        var m = b.Attention;
        m.NumSeqs = chunks.Length;
        int t = 0, rows = 0;
        for (int s = 0; s < chunks.Length; s++)
        {
            var (seq, ids, start) = chunks[s];
            m.QueryStart[s] = t;
            m.SeqLens[s] = start + ids.Length;
            for (int j = 0; j < maxBlocks; j++) m.BlockTables[s * maxBlocks + j] = seq * maxBlocks + j;
            for (int i = 0; i < ids.Length; i++, t++)
            {
                int pos = start + i;
                b.TokenIds[t] = ids[i];
                b.Positions[t] = pos;
                b.SlotMapping[t] = (seq * maxBlocks + pos / blockSize) * blockSize + pos % blockSize;
                b.LogitRows[rows++] = t; // every position, so prefill logits are compared too
            }
        }
        m.QueryStart[chunks.Length] = t;
        b.NumTokens = t;
        b.NumLogitRows = rows;
        return b;
    }

    private static void RunRanks(int world, Action<int> body)
    {
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try { body(r); }
            catch (Exception e) { errors[r] = e; }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.FirstOrDefault(e => e is not null) is { } first) throw first;
    }

    private sealed class Disposables<T>(T[] items) : IDisposable
        where T : IDisposable
    {
        public T[] Items { get; } = items;

        public void Dispose()
        {
            foreach (var i in Items) i.Dispose();
        }
    }
}
