using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Loom.Kernels.Cpu;

/// <summary>
/// Causal paged GQA attention, the straightforward tier: one work item per (sequence, query head),
/// two-pass fp32 softmax with max subtraction, K/V read block by block through the block table.
/// </summary>
internal static unsafe class CpuAttention
{
    private struct Job
    {
        public float* Q;
        public float* O;
        public byte* K;
        public byte* V;
        public int* QueryStart;
        public int* SeqLens;
        public int* Tables;
        public float* Scratch;
        public long ScratchPerThread;
        public int MaxBlocks;
        public int NumHeads;
        public int KvHeads;
        public int HeadDim;
        public int BlockSize;
        public float Scale;
    }

    public static void Run(CpuThreadPool pool, ScratchBuffer scratch, Tensor q, CpuKvCache cache, int layer, AttentionMetadata meta, int numHeads, float scale, Tensor output)
    {
        var spec = cache.Spec;
        int d = spec.HeadDim;
        if (numHeads <= 0 || numHeads % spec.NumKvHeads != 0)
            throw new ArgumentException($"numHeads={numHeads} must be a positive multiple of kvHeads={spec.NumKvHeads}");
        int tokens = meta.NumTokens;
        if (q.DType != DType.F32 || output.DType != DType.F32) throw new ArgumentException("attention q and output must be F32");
        if (q.Rows != tokens || q.Cols != numHeads * d)
            throw new ArgumentException($"q is [{q.Rows},{q.Cols}] but the batch has {tokens} tokens of {numHeads}x{d}");
        if (output.Rows != tokens || output.Cols != numHeads * d)
            throw new ArgumentException($"output is [{output.Rows},{output.Cols}], expected [{tokens},{numHeads * d}]");
        if (d > 1024) throw new NotSupportedException($"headDim {d} > 1024");
        if (tokens == 0) return;

        int maxLen = 0;
        for (int s = 0; s < meta.NumSeqs; s++)
        {
            int qlen = meta.QueryLen(s), len = meta.SeqLens[s];
            if (qlen < 0 || qlen > len) throw new ArgumentException($"sequence {s}: {qlen} new tokens but SeqLens={len}");
            int blocks = (len + spec.BlockSize - 1) / spec.BlockSize;
            if (blocks > meta.MaxBlocksPerSeq) throw new ArgumentException($"sequence {s}: {len} tokens need {blocks} blocks > MaxBlocksPerSeq={meta.MaxBlocksPerSeq}");
            var table = meta.BlockTable(s);
            for (int b = 0; b < blocks; b++)
                if ((uint)table[b] >= (uint)spec.NumBlocks) throw new ArgumentException($"sequence {s}: block {table[b]} out of range [0,{spec.NumBlocks})");
            maxLen = Math.Max(maxLen, len);
        }

        long perThread = ((long)maxLen + 15) & ~15L;
        using var lease = scratch.Rent(perThread * pool.ThreadCount * sizeof(float));
        fixed (int* qs = meta.QueryStart, sl = meta.SeqLens, bt = meta.BlockTables)
        {
            var job = new Job
            {
                Q = (float*)q.Data,
                O = (float*)output.Data,
                K = cache.K(layer),
                V = cache.V(layer),
                QueryStart = qs,
                SeqLens = sl,
                Tables = bt,
                Scratch = (float*)lease.Data,
                ScratchPerThread = perThread,
                MaxBlocks = meta.MaxBlocksPerSeq,
                NumHeads = numHeads,
                KvHeads = spec.NumKvHeads,
                HeadDim = d,
                BlockSize = spec.BlockSize,
                Scale = scale,
            };
            if (spec.DType == DType.BF16) pool.For(meta.NumSeqs * numHeads, &Item<Bf16Kv>, &job);
            else pool.For(meta.NumSeqs * numHeads, &Item<F32Kv>, &job);
        }
    }

    private static void Item<TKv>(void* ctx, int item, int thread)
        where TKv : struct, IKvFormat
    {
        var j = (Job*)ctx;
        int seq = item / j->NumHeads, head = item % j->NumHeads;
        int kvHead = head / (j->NumHeads / j->KvHeads);
        int d = j->HeadDim, bs = j->BlockSize;
        int qStart = j->QueryStart[seq], qlen = j->QueryStart[seq + 1] - qStart;
        int len = j->SeqLens[seq];
        int* table = j->Tables + (long)seq * j->MaxBlocks;
        float* scores = j->Scratch + thread * j->ScratchPerThread;
        float* acc = stackalloc float[d];
        long rowStride = (long)j->NumHeads * d;
        long headStride = (long)bs * d * TKv.Size;
        long blockStride = j->KvHeads * headStride;
        long rowBytes = (long)d * TKv.Size;

        for (int i = 0; i < qlen; i++)
        {
            long t = qStart + i;
            float* q = j->Q + t * rowStride + (long)head * d;
            int ctxLen = len - qlen + i + 1;

            float max = float.NegativeInfinity;
            for (int p = 0; p < ctxLen; p += bs)
            {
                byte* kb = j->K + table[p / bs] * blockStride + kvHead * headStride;
                int n = Math.Min(bs, ctxLen - p);
                for (int o = 0; o < n; o++)
                {
                    float s = Dot<TKv>(q, kb + o * rowBytes, d) * j->Scale;
                    scores[p + o] = s;
                    max = MathF.Max(max, s);
                }
            }

            float sum = ExpInPlace(scores, ctxLen, max);

            new Span<float>(acc, d).Clear();
            for (int p = 0; p < ctxLen; p += bs)
            {
                byte* vb = j->V + table[p / bs] * blockStride + kvHead * headStride;
                int n = Math.Min(bs, ctxLen - p);
                for (int o = 0; o < n; o++) Axpy<TKv>(scores[p + o], vb + o * rowBytes, acc, d);
            }

            float* outRow = j->O + t * rowStride + (long)head * d;
            float inv = 1f / sum;
            for (int x = 0; x < d; x++) outRow[x] = acc[x] * inv;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot<TKv>(float* a, byte* b, int d)
        where TKv : struct, IKvFormat
    {
        int i = 0;
        float s = 0;
        if (d >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= d; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), TKv.Load16(b + i * TKv.Size), acc);
            s = Vector512.Sum(acc);
        }

        if (i + 8 <= d)
        {
            s += Vector256.Sum(Vector256.Load(a + i) * TKv.Load8(b + i * TKv.Size));
            i += 8;
        }

        for (; i < d; i++) s += a[i] * TKv.Load1(b + i * TKv.Size);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy<TKv>(float alpha, byte* x, float* y, int d)
        where TKv : struct, IKvFormat
    {
        int i = 0;
        var va = Vector512.Create(alpha);
        for (; i + 16 <= d; i += 16) Vector512.FusedMultiplyAdd(va, TKv.Load16(x + i * TKv.Size), Vector512.Load(y + i)).Store(y + i);
        for (; i < d; i++) y[i] += alpha * TKv.Load1(x + i * TKv.Size);
    }

    /// <summary>s = exp(s - max) in place; returns Σ s.</summary>
    private static float ExpInPlace(float* s, int n, float max)
    {
        var vmax = Vector512.Create(max);
        var vsum = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var e = Vector512.Exp(Vector512.Load(s + i) - vmax);
            e.Store(s + i);
            vsum += e;
        }

        float sum = Vector512.Sum(vsum);
        for (; i < n; i++)
        {
            float e = MathF.Exp(s[i] - max);
            s[i] = e;
            sum += e;
        }

        return sum;
    }
}

/// <summary>How attention reads K/V elements of the cache dtype as fp32.</summary>
internal unsafe interface IKvFormat
{
    static abstract int Size { get; }

    static abstract Vector512<float> Load16(byte* p);

    static abstract Vector256<float> Load8(byte* p);

    static abstract float Load1(byte* p);
}

internal unsafe struct F32Kv : IKvFormat
{
    public static int Size => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* p) => Vector512.Load((float*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* p) => Vector256.Load((float*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p) => *(float*)p;
}

/// <summary>bf16 is the top half of an fp32: zero-extend each lane and shift it up.</summary>
internal unsafe struct Bf16Kv : IKvFormat
{
    public static int Size => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* p) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p) => BitConverter.Int32BitsToSingle(*(ushort*)p << 16);
}
