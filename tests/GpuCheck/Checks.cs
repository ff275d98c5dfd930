using Loom.Kernels;
using Loom.Kernels.Cpu;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.GpuCheck;

/// <summary>
/// The device backend against the CPU backend on the same inputs. Tolerances: fp32 elementwise ops
/// 1e-4 relative; bf16 GEMMs (inputs rounded to bf16, fp32 accumulation) 2e-2 of the output scale;
/// attention over a bf16 KV pool on both sides 2e-3; end-to-end logits of a bf16 model 5e-2 of
/// the logit scale, and the greedy token must agree at 95 % of positions. The code sees only
/// <see cref="IBackend"/>, so the CPU tests run every check with a CPU backend in the device's place.
/// </summary>
public sealed class Checks(CheckLog log, IBackend device, IBackend cpu)
{
    private void Compare(string name, float[] want, float[] got, double relTol)
    {
        if (want.Length != got.Length)
        {
            log.Fail(name, $"{got.Length} values, expected {want.Length}");
            return;
        }
        double scale = Math.Max(1e-6, want.Max(MathF.Abs)), worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(want[i] - got[i]));
        if (worst <= relTol * scale && !got.Any(float.IsNaN)) log.Pass(name, $"max |Δ| {worst:E2} (scale {scale:F3})");
        else log.Fail(name, $"max |Δ| {worst:E2} > {relTol * scale:E2}");
    }

    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale)];
    }

    private static Tensor Put(IBackend b, float[] data, params int[] shape)
    {
        var t = b.Allocate(DType.F32, shape);
        b.CopyFromHost(data, t);
        return t;
    }

    private static float[] Get(IBackend b, Tensor t)
    {
        var h = new float[t.ElementCount];
        b.Synchronize();
        b.CopyToHost(t, h);
        return h;
    }

    private void Run(string name, Func<IBackend, float[]> op, double tol) => log.Run(name, () => Compare(name, op(cpu), op(device), tol));

    /// <summary>Every op of <see cref="IBackend"/> against the CPU, each its own named check.</summary>
    public unsafe void Ops()
    {
        const int T = 37, H = 512, F = 1376;
        var x = Random(T * H, 1);
        var w = Random(H, 2, 0.5f).Select(v => v + 1f).ToArray();
        Run("rms_norm", b => { using var xt = Put(b, x, T, H); using var wt = Put(b, w, H); using var o = b.Allocate(DType.F32, T, H); b.RmsNorm(xt, wt, 1e-5f, o); return Get(b, o); }, 1e-4);
        Run("fused_add_rms_norm", b =>
        {
            using var xt = Put(b, x, T, H); using var r = Put(b, Random(T * H, 3), T, H); using var wt = Put(b, w, H); using var o = b.Allocate(DType.F32, T, H);
            b.AddRmsNorm(xt, r, wt, 1e-5f, o);
            return [.. Get(b, o), .. Get(b, r)];
        }, 1e-4);
        Run("silu_and_mul", b => { using var g = Put(b, Random(T * 2 * F, 4, 4f), T, 2 * F); using var o = b.Allocate(DType.F32, T, F); b.SiluAndMul(g, o); return Get(b, o); }, 1e-4);
        Run("add", b => { using var a = Put(b, x, T, H); using var c = Put(b, Random(T * H, 5), T, H); using var o = b.Allocate(DType.F32, T, H); b.Add(a, c, o); return Get(b, o); }, 1e-6);
        Run("gather_rows+copy_columns", b =>
        {
            using var a = Put(b, x, T, H); using var g = b.Allocate(DType.F32, 3, H); b.GatherRows(a, [5, 0, 36], g);
            using var c = b.Allocate(DType.F32, T, 100); b.CopyColumns(a, 77, c);
            return [.. Get(b, g), .. Get(b, c)];
        }, 0);
        var inv = Enumerable.Range(0, 32).Select(i => (float)Math.Pow(500000, -2.0 * i / 64)).ToArray();
        var pos = Enumerable.Range(0, T).Select(i => i * 97 % 4000).ToArray();
        Run("rope", b => { using var q = Put(b, Random(T * 8 * 64, 6), T, 8 * 64); b.Rope(q, 64, pos, inv, 1f); return Get(b, q); }, 2e-4);
        var wBytes = Random(F * H, 7, 0.05f);
        fixed (float* wp = wBytes)
        {
            var view = new WeightView((nint)wp, DType.F32, [F, H], "w");
            Run("linear (cuBLAS bf16)", b =>
            {
                using var lw = b.PrepareLinear([view]); using var xt = Put(b, x, T, H); using var o = b.Allocate(DType.F32, T, F);
                b.Linear(xt, lw, null, o);
                return Get(b, o);
            }, 2e-2);
            // A bf16 table (embedding_bf16) and an f32 one (embedding_f32: an f32 checkpoint's table).
            foreach (var dtype in new[] { DType.BF16, DType.F32 })
                Run($"embedding {dtype.ToString().ToLowerInvariant()}", b =>
                {
                    using var table = b.Upload(view, dtype); using var o = b.Allocate(DType.F32, 4, H);
                    b.Embedding(table, [3, 0, 1375, 17], o);
                    return Get(b, o);
                }, 1e-6);
        }
        foreach (var (name, seqLens, queryLens) in new (string, int[], int[])[]
        {
            ("attention decode", [1, 40, 200, 33], [1, 1, 1, 1]),
            ("attention decode split-K", [3000, 700, 1], [1, 1, 1]),
            ("attention prefill+decode mixed", [37, 50, 9, 1, 90], [37, 13, 1, 1, 40]),
        })
            Run(name, b => Attention(b, seqLens, queryLens), 2e-3);
        // More query tokens in one step than gridDim.y allows (65,535): the prefill grid puts tokens on x.
        int[] many = [.. Enumerable.Repeat(100, 700)];
        Run("attention prefill 70,000 tokens in one step", b => Attention(b, many, many, heads: 2, kvHeads: 1, d: 64), 2e-3);
    }

    private static float[] Attention(IBackend b, int[] seqLens, int[] queryLens, int heads = 8, int kvHeads = 2, int d = 128)
    {
        int bs = 16, n = seqLens.Length;
        int maxBlocks = seqLens.Max() / bs + 2;
        var spec = new KvCacheSpec(1, n * maxBlocks, bs, kvHeads, d, DType.BF16);
        using var cache = b.AllocateKvCache(spec);
        var tables = new int[n * maxBlocks];
        for (int i = 0; i < tables.Length; i++) tables[i] = (int)((long)i * 7919 % tables.Length);
        int total = seqLens.Sum();
        var slots = new int[total];
        int t = 0;
        for (int s = 0; s < n; s++)
            for (int p = 0; p < seqLens[s]; p++) slots[t++] = tables[s * maxBlocks + p / bs] * bs + p % bs;
        using (var k = Put(b, Random(total * kvHeads * d, 11), total, kvHeads * d))
        using (var v = Put(b, Random(total * kvHeads * d, 12), total, kvHeads * d))
            b.WriteKv(cache, 0, k, v, slots);
        var qs = new int[n + 1];
        for (int s = 0; s < n; s++) qs[s + 1] = qs[s] + queryLens[s];
        var meta = new AttentionMetadata { NumSeqs = n, QueryStart = qs, SeqLens = seqLens, BlockTables = tables, MaxBlocksPerSeq = maxBlocks };
        using var q = Put(b, Random(qs[n] * heads * d, 13), qs[n], heads * d);
        using var o = b.Allocate(DType.F32, qs[n], heads * d);
        b.PagedAttention(q, cache, 0, meta, heads, 1f / MathF.Sqrt(d), o);
        return Get(b, o);
    }

    /// <summary>
    /// Device sampling (sampling.cu) against the host implementation of the same algorithm
    /// (TokenSampler, the CPU backend's sampler) on a Qwen-sized vocabulary: every slot's id
    /// (greedy exactly; a seeded draw may differ only within float rounding of a boundary, so at
    /// most one of them), logprobs within 1e-3, the same top-5 ids.
    /// </summary>
    public void Sampling(IDeviceSampler deviceSampler) => log.Run("device sampling", () =>
        {
            const int vocab = 151_936, rows = 6;
            var rng = new System.Random(17);
            var logits = new float[rows * vocab];
            for (int i = 0; i < logits.Length; i++) logits[i] = (float)((rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 4);
            for (int i = 0; i < rows * 20; i++) logits[rng.Next(logits.Length)] += 12f;
            SamplingBatch Make()
            {
                var b = new SamplingBatch();
                (float T, int K, float P, float MinP)[] cases = [(0, 0, 1, 0), (1, 0, 1, 0), (0.7f, 50, 1, 0), (1, 0, 0.9f, 0), (1.3f, 0, 0.8f, 0.1f), (0.8f, 1000, 0.95f, 0.02f), (0, 0, 1, 0), (1, 300, 0.7f, 0)];
                for (int s = 0; s < cases.Length; s++)
                {
                    var (t, k, p, m) = cases[s];
                    b.AddSlot(s % rows, t, k, p, m, (s * 0.137 + 0.05) % 1, s % 2 == 0 ? 5 : null);
                    if (s == 0) b.AddAdjustment(0, 7, 1f, float.PositiveInfinity);
                    if (s == 6)
                    {
                        b.AddAdjustment(6, 123, 1.5f, 0.5f);
                        b.AddAdjustment(6, 99_000, 0.8f, 2f);
                    }
                }
                return b;
            }
            var want = Make();
            var got = Make();
            using (var t = Put(cpu, logits, rows, vocab)) ((IDeviceSampler)cpu).Sample(t, want);
            using (var t = Put(device, logits, rows, vocab)) deviceSampler.Sample(t, got);
            int idDiff = 0, greedyDiff = 0;
            double lpDiff = 0;
            for (int s = 0; s < want.Count; s++)
            {
                if (want.Ids[s] != got.Ids[s]) { idDiff++; if (want.Temperature[s] < SamplingBatch.GreedyTemperature) greedyDiff++; }
                else if (want.WantLogprob[s]) lpDiff = Math.Max(lpDiff, Math.Abs(want.Logprobs[s] - got.Logprobs[s]));
            }
            bool topSame = want.TopIds.AsSpan(0, want.Count * want.TopLogprobs).SequenceEqual(got.TopIds.AsSpan(0, got.Count * got.TopLogprobs));
            string detail = $"ids differ {idDiff}/{want.Count} (greedy {greedyDiff}), max |Δ logprob| {lpDiff:E2}, top-5 ids {(topSame ? "equal" : "differ")}";
            if (greedyDiff == 0 && idDiff <= 1 && lpDiff <= 1e-3 && topSame) log.Pass("device sampling", detail);
            else log.Fail("device sampling", detail);
        });

    /// <summary>The small bf16 model the end-to-end and engine checks share, generated once under <paramref name="modelRoot"/>.</summary>
    public static string TinyModel(string modelRoot)
    {
        var dir = Path.Combine(modelRoot, "tiny-qwen2-bf16");
        if (!File.Exists(Path.Combine(dir, "config.json")))
            ModelGenerator.Generate(ModelPresets.Get("tiny-qwen2") with { Heads = 8, KvHeads = 2, HeadDim = 64, Hidden = 512, Ffn = 1024, Vocab = 4096, Layers = 4 },
                dir, new GenerateOptions { DType = DType.BF16, Seed = 5 });
        return dir;
    }

    /// <summary>Logits of a prefill of two sequences and one decode step, the same model on both backends.</summary>
    public void EndToEnd(LlamaModel a, LlamaModel g) => log.Run("end-to-end", () =>
    {
        using var ra = new DirectRunner(a, 2, 128, kvDType: DType.BF16);
        using var rg = new DirectRunner(g, 2, 128, kvDType: DType.BF16);
        int vocab = a.Config.VocabSize;
        var rng = new Random(3);
        int[] p0 = [.. Enumerable.Range(0, 50).Select(_ => rng.Next(1, vocab))], p1 = [.. Enumerable.Range(0, 20).Select(_ => rng.Next(1, vocab))];
        var want = ra.Step([new SequenceChunk(0, p0, 0), new SequenceChunk(1, p1, 0)], allLogits: true).ToList();
        var got = rg.Step([new SequenceChunk(0, p0, 0), new SequenceChunk(1, p1, 0)], allLogits: true).ToList();
        want.AddRange(ra.Step([new SequenceChunk(0, [7], 50), new SequenceChunk(1, [9], 20)]));
        got.AddRange(rg.Step([new SequenceChunk(0, [7], 50), new SequenceChunk(1, [9], 20)]));
        Compare("end-to-end logits (bf16 model, 72 positions)", [.. want], [.. got], 5e-2);
        int rows = want.Count / vocab, agree = 0;
        for (int r = 0; r < rows; r++)
            if (ArgMax(want, r * vocab, vocab) == ArgMax(got, r * vocab, vocab)) agree++;
        if (agree >= 0.95 * rows) log.Pass("end-to-end greedy agreement", $"{agree}/{rows}");
        else log.Fail("end-to-end greedy agreement", $"{agree}/{rows}");
    });

    private static int ArgMax(List<float> v, int from, int n)
    {
        int best = from;
        for (int i = from; i < from + n; i++) if (v[i] > v[best]) best = i;
        return best - from;
    }
}
