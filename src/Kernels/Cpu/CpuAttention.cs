using System.Runtime.CompilerServices;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Cpu;

/// <summary>
/// Causal paged GQA attention, flash-style: one pass over the K/V blocks with an online softmax.
/// A work item is (sequence, kv head, up to <see cref="TokensPerItem"/> query tokens), so the
/// query heads that share a kv head read each K/V block once, and a long prefill still spreads
/// over both threads. Inside an item, query rows (token, head) go through in tiles of four:
/// K is stored transposed per block ([headDim][blockSize], see <see cref="CpuKvCache"/>), so one
/// vector load holds consecutive keys of one dimension and scores need no horizontal sums. Keys go
/// 16 at a time: one AVX-512 vector, two AVX2 ones, four NEON ones.
/// </summary>
internal static unsafe class CpuAttention<S, V>
    where S : struct, ISimd<V>
    where V : unmanaged
{
    private const int Rows = 4;
    private const int Lanes = 16;
    public const int TokensPerItem = 16;

    private struct Job
    {
        public float* Q;
        public float* O;
        public byte* K;
        public byte* V;
        public int* QueryStart;
        public int* SeqLens;
        public int* Tables;
        public int* ItemSeq;
        public int* ItemToken;
        public int MaxBlocks;
        public int NumHeads;
        public int KvHeads;
        public int HeadDim;
        public int BlockSize;
        public float Scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

        int entries = 0;
        for (int s = 0; s < meta.NumSeqs; s++)
        {
            int qlen = meta.QueryLen(s), len = meta.SeqLens[s];
            if (qlen < 0 || qlen > len) throw new ArgumentException($"sequence {s}: {qlen} new tokens but SeqLens={len}");
            int blocks = (len + spec.BlockSize - 1) / spec.BlockSize;
            if (blocks > meta.MaxBlocksPerSeq) throw new ArgumentException($"sequence {s}: {len} tokens need {blocks} blocks > MaxBlocksPerSeq={meta.MaxBlocksPerSeq}");
            var table = meta.BlockTable(s);
            for (int b = 0; b < blocks; b++)
                if ((uint)table[b] >= (uint)spec.NumBlocks) throw new ArgumentException($"sequence {s}: block {table[b]} out of range [0,{spec.NumBlocks})");
            entries += (qlen + TokensPerItem - 1) / TokensPerItem;
        }

        using var lease = scratch.Rent(2L * entries * sizeof(int));
        int* itemSeq = (int*)lease.Data, itemToken = itemSeq + entries;
        int e = 0;
        for (int s = 0; s < meta.NumSeqs; s++)
            for (int i = 0; i < meta.QueryLen(s); i += TokensPerItem, e++)
            {
                itemSeq[e] = s;
                itemToken[e] = i;
            }

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
                ItemSeq = itemSeq,
                ItemToken = itemToken,
                MaxBlocks = meta.MaxBlocksPerSeq,
                NumHeads = numHeads,
                KvHeads = spec.NumKvHeads,
                HeadDim = d,
                BlockSize = spec.BlockSize,
                Scale = scale,
            };
            int items = entries * spec.NumKvHeads;
            if (spec.DType == DType.BF16) pool.For(items, &Item<Bf16Kv>, &job);
            else pool.For(items, &Item<F32Kv>, &job);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Item<TKv>(void* ctx, int item, int thread)
        where TKv : struct, IKvFormat
    {
        var j = (Job*)ctx;
        int entry = item / j->KvHeads, kvHead = item % j->KvHeads;
        int seq = j->ItemSeq[entry], tok0 = j->ItemToken[entry];
        int d = j->HeadDim, group = j->NumHeads / j->KvHeads;
        int qStart = j->QueryStart[seq], qlen = j->QueryStart[seq + 1] - qStart, len = j->SeqLens[seq];
        int rows = (Math.Min(qlen, tok0 + TokensPerItem) - tok0) * group;
        long rowStride = (long)j->NumHeads * d;

        var tile = new Tile
        {
            Q = stackalloc float[Rows * d],
            Acc = stackalloc float[Rows * d],
            P = stackalloc float[Rows * Lanes],
        };
        Span<int> ctxLen = stackalloc int[Rows];
        var outRows = stackalloc float*[Rows];
        for (int r0 = 0; r0 < rows; r0 += Rows)
        {
            int nr = Math.Min(Rows, rows - r0);
            for (int r = 0; r < Rows; r++)
            {
                var qr = tile.Q.Slice(r * d, d);
                if (r >= nr)
                {
                    qr.Clear();
                    ctxLen[r] = 0;
                    continue;
                }

                int row = r0 + r, i = tok0 + row / group, head = kvHead * group + row % group;
                long t = qStart + i;
                float* src = j->Q + t * rowStride + (long)head * d;
                for (int x = 0; x < d; x++) qr[x] = src[x] * j->Scale;
                ctxLen[r] = len - qlen + i + 1;
                outRows[r] = j->O + t * rowStride + (long)head * d;
            }

            AttendTile<TKv>(j, seq, kvHead, ref tile, ctxLen);
            for (int r = 0; r < nr; r++)
            {
                var acc = tile.Acc.Slice(r * d, d);
                float inv = 1f / tile.L[r];
                for (int x = 0; x < d; x++) outRows[r][x] = acc[x] * inv;
            }
        }
    }

    private ref struct Tile
    {
        public Span<float> Q;
        public Span<float> Acc;
        public Span<float> P;
        public RowStats M;
        public RowStats L;
    }

    [InlineArray(Rows)]
    private struct RowStats
    {
        private float _element;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendTile<TKv>(Job* j, int seq, int kvHead, ref Tile tile, ReadOnlySpan<int> ctxLen)
        where TKv : struct, IKvFormat
    {
        int d = j->HeadDim, bs = j->BlockSize;
        int maxCtx = 0;
        for (int r = 0; r < Rows; r++)
        {
            maxCtx = Math.Max(maxCtx, ctxLen[r]);
            tile.M[r] = float.NegativeInfinity;
            tile.L[r] = 0;
        }

        tile.Acc.Clear();
        int* table = j->Tables + (long)seq * j->MaxBlocks;
        long headBytes = (long)bs * d * TKv.Size;
        long blockBytes = j->KvHeads * headBytes;
        fixed (float* q = tile.Q, acc = tile.Acc, p = tile.P)
        {
            float* scores = stackalloc float[Rows * Lanes];
            for (int b = 0; b * bs < maxCtx; b++)
            {
                long at = table[b] * blockBytes + kvHead * headBytes;
                byte* kT = j->K + at, vBlock = j->V + at;
                if ((b + 1) * bs < maxCtx)
                {
                    // Block tables scatter the tiles, so the hardware prefetcher cannot see the next one coming.
                    long next = table[b + 1] * blockBytes + kvHead * headBytes;
                    for (long off = 0; off < headBytes; off += 64)
                    {
                        S.Prefetch(j->K + next + off);
                        S.Prefetch(j->V + next + off);
                    }
                }

                for (int c = 0; c < bs; c += Lanes)
                {
                    int p0 = b * bs + c;
                    if (p0 >= maxCtx) break;
                    int lanes = Math.Min(Lanes, bs - c);
                    byte* kCol = kT + (long)c * TKv.Size;
                    if (lanes == Lanes)
                        for (int g = 0; g < Lanes; g += S.Lanes) Scores<TKv>(kCol + (long)g * TKv.Size, (long)bs * TKv.Size, d, q, scores + g);
                    else NarrowScores<TKv>(kCol, bs, lanes, d, q, scores);
                    float a0 = Softmax(scores, Math.Min(lanes, ctxLen[0] - p0), ref tile.M[0], ref tile.L[0], p);
                    float a1 = Softmax(scores + Lanes, Math.Min(lanes, ctxLen[1] - p0), ref tile.M[1], ref tile.L[1], p + Lanes);
                    float a2 = Softmax(scores + 2 * Lanes, Math.Min(lanes, ctxLen[2] - p0), ref tile.M[2], ref tile.L[2], p + 2 * Lanes);
                    float a3 = Softmax(scores + 3 * Lanes, Math.Min(lanes, ctxLen[3] - p0), ref tile.M[3], ref tile.L[3], p + 3 * Lanes);
                    AccumulateV<TKv>(vBlock + (long)c * d * TKv.Size, Math.Min(lanes, maxCtx - p0), d, p, acc, a0, a1, a2, a3);
                }
            }
        }
    }

    /// <summary>
    /// Scores of the four query rows against one vector of keys: q[r]·K[:, o], with K transposed so
    /// each dimension is one load shared by the four rows; written at scores[r*16 + o]. Kept out of
    /// line so the JIT holds the accumulators in registers (inlined into the tile loop they spilled
    /// every FMA).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Scores<TKv>(byte* kCol, long kRow, int d, float* q, float* scores)
        where TKv : struct, IKvFormat
    {
        float* q1 = q + d, q2 = q + 2 * d, q3 = q + 3 * d;
        // Two accumulator sets (even and odd dimensions) halve the FMA latency chain.
        V s0 = S.Zero, s1 = S.Zero, s2 = S.Zero, s3 = S.Zero;
        V t0 = S.Zero, t1 = S.Zero, t2 = S.Zero, t3 = S.Zero;
        int x = 0;
        for (; x + 2 <= d; x += 2)
        {
            var k = LoadKv<TKv>(kCol + x * kRow);
            var k2 = LoadKv<TKv>(kCol + (x + 1) * kRow);
            s0 = S.MulAdd(S.Splat(q[x]), k, s0);
            s1 = S.MulAdd(S.Splat(q1[x]), k, s1);
            s2 = S.MulAdd(S.Splat(q2[x]), k, s2);
            s3 = S.MulAdd(S.Splat(q3[x]), k, s3);
            t0 = S.MulAdd(S.Splat(q[x + 1]), k2, t0);
            t1 = S.MulAdd(S.Splat(q1[x + 1]), k2, t1);
            t2 = S.MulAdd(S.Splat(q2[x + 1]), k2, t2);
            t3 = S.MulAdd(S.Splat(q3[x + 1]), k2, t3);
        }

        if (x < d)
        {
            var k = LoadKv<TKv>(kCol + x * kRow);
            s0 = S.MulAdd(S.Splat(q[x]), k, s0);
            s1 = S.MulAdd(S.Splat(q1[x]), k, s1);
            s2 = S.MulAdd(S.Splat(q2[x]), k, s2);
            s3 = S.MulAdd(S.Splat(q3[x]), k, s3);
        }

        S.Store(S.Add(s0, t0), scores);
        S.Store(S.Add(s1, t1), scores + Lanes);
        S.Store(S.Add(s2, t2), scores + 2 * Lanes);
        S.Store(S.Add(s3, t3), scores + 3 * Lanes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static V LoadKv<TKv>(byte* p)
        where TKv : struct, IKvFormat => TKv.Size == 2 ? S.LoadBf16((ushort*)p) : S.Load((float*)p);

    /// <summary>Scores for a block narrower than 16 keys (odd block sizes): never reads past the tile; unused lanes are 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void NarrowScores<TKv>(byte* kCol, int bs, int lanes, int d, float* q, float* scores)
        where TKv : struct, IKvFormat
    {
        for (int r = 0; r < Rows; r++)
            for (int o = 0; o < Lanes; o++)
            {
                float sum = 0;
                if (o < lanes)
                    for (int x = 0; x < d; x++) sum += q[r * d + x] * TKv.Load1(kCol + ((long)x * bs + o) * TKv.Size);
                scores[r * Lanes + o] = sum;
            }
    }

    /// <summary>
    /// acc[r] = acc[r]·alpha[r] + Σ_o p[r][o]·V[o] for the four rows: the accumulators stay in
    /// registers across the keys, and each V vector is widened once for all four rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AccumulateV<TKv>(byte* v, int keys, int d, float* p, float* acc, float a0, float a1, float a2, float a3)
        where TKv : struct, IKvFormat
    {
        float* acc1 = acc + d, acc2 = acc + 2 * d, acc3 = acc + 3 * d;
        float* p1 = p + Lanes, p2 = p + 2 * Lanes, p3 = p + 3 * Lanes;
        long row = (long)d * TKv.Size;
        int l = S.Lanes;
        V va0 = S.Splat(a0), va1 = S.Splat(a1), va2 = S.Splat(a2), va3 = S.Splat(a3);
        int x = 0;
        // Two column slices at once: eight independent FMA chains instead of four.
        for (; x + 2 * l <= d; x += 2 * l)
        {
            var r0 = S.Mul(S.Load(acc + x), va0);
            var r1 = S.Mul(S.Load(acc1 + x), va1);
            var r2 = S.Mul(S.Load(acc2 + x), va2);
            var r3 = S.Mul(S.Load(acc3 + x), va3);
            var u0 = S.Mul(S.Load(acc + x + l), va0);
            var u1 = S.Mul(S.Load(acc1 + x + l), va1);
            var u2 = S.Mul(S.Load(acc2 + x + l), va2);
            var u3 = S.Mul(S.Load(acc3 + x + l), va3);
            byte* vx = v + (long)x * TKv.Size;
            for (int o = 0; o < keys; o++)
            {
                var vv = LoadKv<TKv>(vx + o * row);
                var vw = LoadKv<TKv>(vx + o * row + l * TKv.Size);
                var w0 = S.Splat(p[o]);
                var w1 = S.Splat(p1[o]);
                var w2 = S.Splat(p2[o]);
                var w3 = S.Splat(p3[o]);
                r0 = S.MulAdd(w0, vv, r0);
                r1 = S.MulAdd(w1, vv, r1);
                r2 = S.MulAdd(w2, vv, r2);
                r3 = S.MulAdd(w3, vv, r3);
                u0 = S.MulAdd(w0, vw, u0);
                u1 = S.MulAdd(w1, vw, u1);
                u2 = S.MulAdd(w2, vw, u2);
                u3 = S.MulAdd(w3, vw, u3);
            }

            S.Store(r0, acc + x);
            S.Store(r1, acc1 + x);
            S.Store(r2, acc2 + x);
            S.Store(r3, acc3 + x);
            S.Store(u0, acc + x + l);
            S.Store(u1, acc1 + x + l);
            S.Store(u2, acc2 + x + l);
            S.Store(u3, acc3 + x + l);
        }

        for (; x + l <= d; x += l)
        {
            var r0 = S.Mul(S.Load(acc + x), va0);
            var r1 = S.Mul(S.Load(acc1 + x), va1);
            var r2 = S.Mul(S.Load(acc2 + x), va2);
            var r3 = S.Mul(S.Load(acc3 + x), va3);
            byte* vx = v + (long)x * TKv.Size;
            for (int o = 0; o < keys; o++)
            {
                var vv = LoadKv<TKv>(vx + o * row);
                r0 = S.MulAdd(S.Splat(p[o]), vv, r0);
                r1 = S.MulAdd(S.Splat(p1[o]), vv, r1);
                r2 = S.MulAdd(S.Splat(p2[o]), vv, r2);
                r3 = S.MulAdd(S.Splat(p3[o]), vv, r3);
            }

            S.Store(r0, acc + x);
            S.Store(r1, acc1 + x);
            S.Store(r2, acc2 + x);
            S.Store(r3, acc3 + x);
        }

        for (; x < d; x++)
        {
            float r0 = acc[x] * a0, r1 = acc1[x] * a1, r2 = acc2[x] * a2, r3 = acc3[x] * a3;
            for (int o = 0; o < keys; o++)
            {
                float vv = TKv.Load1(v + o * row + (long)x * TKv.Size);
                r0 += p[o] * vv;
                r1 += p1[o] * vv;
                r2 += p2[o] * vv;
                r3 += p3[o] * vv;
            }

            acc[x] = r0;
            acc1[x] = r1;
            acc2[x] = r2;
            acc3[x] = r3;
        }
    }

    /// <summary>
    /// Online-softmax update of one row with 16 new scores (in <paramref name="s"/>, which it may
    /// overwrite), of which the first <paramref name="valid"/> are visible (the rest are
    /// causal-masked or past the block): writes the 16 weights to <paramref name="p"/> and returns
    /// the factor that rescales the row's accumulator.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Softmax(float* s, int valid, ref float m, ref float l, float* p)
    {
        if (valid <= 0)
        {
            new Span<float>(p, Lanes).Clear();
            return 1f;
        }

        for (int o = valid; o < Lanes; o++) s[o] = float.NegativeInfinity;
        var mx = S.Load(s);
        for (int g = S.Lanes; g < Lanes; g += S.Lanes) mx = S.Max(mx, S.Load(s + g));
        float mNew = MathF.Max(m, S.MaxAcross(mx));
        float alpha = MathF.Exp(m - mNew);
        var mv = S.Splat(mNew);
        var sum = S.Zero;
        for (int g = 0; g < Lanes; g += S.Lanes)
        {
            var e = S.Exp(S.Sub(S.Load(s + g), mv));
            S.Store(e, p + g);
            sum = S.Add(sum, e);
        }

        float total = S.Sum(sum);
        if (valid < Lanes)
        {
            // Exp saturates near zero rather than reaching it, so masked lanes are zeroed outright.
            for (int o = valid; o < Lanes; o++)
            {
                total -= p[o];
                p[o] = 0;
            }
        }

        l = l * alpha + total;
        m = mNew;
        return alpha;
    }
}

/// <summary>How attention reads K/V elements of the cache dtype as fp32 (vectors go through the ISA's loads).</summary>
internal unsafe interface IKvFormat
{
    static abstract int Size { get; }

    static abstract float Load1(byte* p);
}

internal unsafe struct F32Kv : IKvFormat
{
    public static int Size => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p) => *(float*)p;
}

/// <summary>bf16 is the top half of an fp32.</summary>
internal unsafe struct Bf16Kv : IKvFormat
{
    public static int Size => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* p) => BitConverter.Int32BitsToSingle(*(ushort*)p << 16);
}
