using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// The batch the GPU worker profiles before it sizes its KV pool: max_num_batched_tokens over
/// max_num_seqs sequences with a logits row each (so the logits and sampler scratch reach their
/// peak). Checked on the CPU: it is a well-formed paged batch whose rows equal each sequence alone.
/// </summary>
public sealed class CudaKvSizingProfileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-profile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(100, 7, 16)]
    [InlineData(512, 64, 16)]
    [InlineData(33, 33, 8)]
    [InlineData(20, 1, 16)]
    public void TheProfilingBatchSplitsTheTokenBudgetOverTheSequences(int tokens, int seqs, int blockSize)
    {
        var b = ForwardBatch.Profiling(tokens, seqs, blockSize);
        var meta = b.Attention;
        Assert.Equal(tokens, b.NumTokens);
        Assert.Equal(seqs, b.NumLogitRows);
        Assert.Equal(seqs, meta.NumSeqs);
        Assert.Equal(tokens, Enumerable.Range(0, seqs).Sum(s => meta.SeqLens[s]));
        var slots = b.SlotMapping.Take(tokens).ToArray();
        Assert.Equal(tokens, slots.Distinct().Count());
        Assert.All(slots, slot => Assert.InRange(slot, 0, seqs * meta.MaxBlocksPerSeq * blockSize - 1));
        for (int s = 0; s < seqs; s++) Assert.Equal(meta.QueryStart[s + 1] - 1, b.LogitRows[s]);
    }

    [Fact]
    public void ItsLogitsRowsEqualEachSequenceRunAlone()
    {
        ModelGenerator.Generate(ModelPresets.Tiny with { Vocab = 256 }, _dir, new GenerateOptions { Seed = 4 });
        using var backend = new CpuBackend(1);
        using var llama = LlamaModel.Load(_dir, backend);
        var model = new SingleDeviceModel(llama);
        var batch = ForwardBatch.Profiling(50, 4, 16);
        model.AllocateKvCache(batch.Attention.NumSeqs * batch.Attention.MaxBlocksPerSeq, 16, DType.F32);
        var all = new float[4 * 256];
        backend.CopyToHost(model.Forward(batch), all);
        model.FreeKvCache();

        using var direct = new DirectRunner(llama, 1, 64);
        for (int s = 0; s < 4; s++)
        {
            int len = batch.Attention.SeqLens[s];
            var alone = direct.Step([new SequenceChunk(0, new int[len], 0)]);
            for (int v = 0; v < 256; v++) Assert.True(MathF.Abs(alone[v] - all[s * 256 + v]) <= 1e-4f, $"seq {s} logit {v}: {all[s * 256 + v]} vs {alone[v]} alone");
        }
    }
}
