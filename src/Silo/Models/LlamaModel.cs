using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// One decoder-only transformer for Llama, Mistral, Qwen2 and Qwen3; the config's switches
/// (qkv bias, q/k norm, tied embeddings, rope scaling) are the only differences. It runs one flat
/// batch of tokens from many sequences per call, which is what continuous batching feeds it.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly IBackend _backend;
    private readonly Tensor _embedTokens;
    private readonly Tensor _finalNorm;
    private readonly LinearWeight _lmHead;
    private readonly LlamaLayer[] _layers;
    private readonly float[] _invFreq;
    private readonly float _eps;
    private Workspace? _ws;
    private Loom.Kernels.Collectives.ICommunicator? _communicator;

    private LlamaModel(IBackend backend, ModelConfig config, Tensor embed, Tensor finalNorm, LinearWeight lmHead, LlamaLayer[] layers)
    {
        _backend = backend;
        Config = config;
        _embedTokens = embed;
        _finalNorm = finalNorm;
        _lmHead = lmHead;
        _layers = layers;
        _invFreq = RotaryEmbedding.InverseFrequencies(config);
        _eps = (float)config.RmsNormEps;
    }

    public ModelConfig Config { get; }
    public IBackend Backend => _backend;

    /// <summary>Bytes one forward reads from the linear weights (decode is bound by this).</summary>
    public long LinearWeightBytes => _layers.Sum(l => l.LinearBytes) + _lmHead.ByteLength;

    /// <summary>Parameters that multiply each token (linear layers and LM head), for FLOP accounting.</summary>
    public long MatmulParameters
    {
        get
        {
            var c = Config;
            long perLayer = (long)c.HiddenSize * (c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim
                + (long)c.NumHeads * c.HeadDim * c.HiddenSize + 3L * c.HiddenSize * c.IntermediateSize;
            return perLayer * c.NumLayers + (long)c.HiddenSize * c.VocabSize;
        }
    }

    /// <summary>
    /// Loads a Hugging Face folder, a seeded folder (the demo model), or a .gguf file (or a folder
    /// holding one): on the CPU its quantized tensors stay quantized; other backends get them decoded
    /// to bf16 at load.
    /// </summary>
    public static LlamaModel Load(string modelDir, IBackend backend)
    {
        if (GgufModel.Resolve(modelDir) is { } gguf)
        {
            var (file, ggufConfig, ggufWeights) = GgufModel.Open(gguf, dequantizeToBf16: !backend.AcceptsQuantizedWeights);
            using (file)
            using (ggufWeights)
                return Load(ggufConfig, ggufWeights, backend);
        }

        var config = ModelConfig.Load(modelDir);
        // The demo model's folder names a seed instead of holding weights (SeededWeights).
        if (SeededWeights.TryOpen(modelDir, config) is { } seeded)
        {
            using (seeded)
                return Load(config, seeded, backend);
        }

        using var weights = ModelWeights.Open(modelDir);
        return Load(config, weights, backend);
    }

    /// <summary>Validates every tensor's name and shape against the config and moves it onto the backend.</summary>
    public static LlamaModel Load(ModelConfig c, IWeights w, IBackend backend) => Load(c, w, backend, null);

    /// <summary>
    /// Loads one tensor-parallel shard: <paramref name="c"/> is the shard's config (its share of the
    /// heads and MLP columns, see <see cref="TensorParallel"/>) and <paramref name="w"/> hands out its
    /// slices; the all-reduce after o_proj and down_proj goes through <paramref name="communicator"/>.
    /// </summary>
    public static LlamaModel Load(ModelConfig c, IWeights w, IBackend backend, Loom.Kernels.Collectives.ICommunicator? communicator)
    {
        var layers = new List<LlamaLayer>();
        Tensor? embed = null, norm = null;
        LinearWeight? head = null;
        try
        {
            var embedView = w.Get("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
            embed = backend.Upload(embedView, embedView.DType);
            for (int i = 0; i < c.NumLayers; i++) layers.Add(LlamaLayer.Load(backend, w, c, i));
            norm = backend.Upload(w.Get("model.norm.weight", c.HiddenSize), DType.F32);
            // Tied checkpoints usually omit lm_head; some still carry a copy, which is then used.
            head = backend.PrepareLinear([
                !c.TieWordEmbeddings || w.Contains("lm_head.weight")
                    ? w.Get("lm_head.weight", c.VocabSize, c.HiddenSize)
                    : embedView]);
            return new LlamaModel(backend, c, embed, norm, head, layers.ToArray()) { _communicator = communicator };
        }
        catch
        {
            foreach (var l in layers) l.Dispose();
            embed?.Dispose();
            norm?.Dispose();
            head?.Dispose();
            throw;
        }
    }

    public KvCache AllocateKvCache(int numBlocks, int blockSize, DType dtype = DType.F32) =>
        _backend.AllocateKvCache(new KvCacheSpec(Config.NumLayers, numBlocks, blockSize, Config.NumKvHeads, Config.HeadDim, dtype));

    /// <summary>
    /// Runs the batch through every layer, writing its K/V into <paramref name="cache"/>, and
    /// returns logits [NumLogitRows, vocab] in a backend tensor owned by the model (valid until
    /// the next call).
    /// </summary>
    public Tensor Forward(ForwardBatch batch, KvCache cache)
    {
        int t = batch.NumTokens;
        if (t <= 0) throw new ArgumentException("a forward batch needs at least one token", nameof(batch));
        if (batch.Attention.NumTokens != t)
            throw new ArgumentException($"attention metadata covers {batch.Attention.NumTokens} tokens, batch has {t}", nameof(batch));
        var c = Config;
        var ws = _ws is { } cur && cur.Capacity >= t && cur.LogitCapacity >= batch.NumLogitRows
            ? cur : (_ws = Workspace.Grow(_ws, _backend, c, t, batch.NumLogitRows));
        var b = _backend;
        var ids = batch.TokenIds.AsSpan(0, t);
        var positions = batch.Positions.AsSpan(0, t);
        var slots = batch.SlotMapping.AsSpan(0, t);
        foreach (var id in ids)
            if ((uint)id >= (uint)c.VocabSize) throw new ArgumentOutOfRangeException(nameof(batch), $"token id {id} is outside the vocabulary [0, {c.VocabSize})");

        var residual = ws.Residual.SliceRows(0, t);
        var x = ws.X.SliceRows(0, t);
        var normed = ws.Normed.SliceRows(0, t);
        var qkv = ws.Qkv.SliceRows(0, t);
        var q = ws.Q.SliceRows(0, t);
        var k = ws.K.SliceRows(0, t);
        var v = ws.V.SliceRows(0, t);
        var attn = ws.Attn.SliceRows(0, t);
        var gateUp = ws.GateUp.SliceRows(0, t);
        var act = ws.Act.SliceRows(0, t);
        int qDim = c.NumHeads * c.HeadDim, kvDim = c.NumKvHeads * c.HeadDim;
        float scale = 1f / MathF.Sqrt(c.HeadDim);

        b.Embedding(_embedTokens, ids, residual);
        for (int li = 0; li < _layers.Length; li++)
        {
            var layer = _layers[li];
            // The residual stream lives in `residual`; each sub-block's output lands in `x` and is
            // folded in by the next fused add+norm, as vLLM's fused_add_rms_norm does.
            if (li == 0) b.RmsNorm(residual, layer.InputNorm, _eps, normed);
            else b.AddRmsNorm(x, residual, layer.InputNorm, _eps, normed);

            b.Linear(normed, layer.Qkv, layer.QkvBias, qkv);
            b.CopyColumns(qkv, 0, q);
            b.CopyColumns(qkv, qDim, k);
            b.CopyColumns(qkv, qDim + kvDim, v);
            if (layer.QNorm is not null && layer.KNorm is not null)
            {
                var qh = q.View(t * c.NumHeads, c.HeadDim);
                var kh = k.View(t * c.NumKvHeads, c.HeadDim);
                b.RmsNorm(qh, layer.QNorm, _eps, qh);
                b.RmsNorm(kh, layer.KNorm, _eps, kh);
            }
            b.Rope(q, c.HeadDim, positions, _invFreq, 1f);
            b.Rope(k, c.HeadDim, positions, _invFreq, 1f);
            b.WriteKv(cache, li, k, v, slots);
            b.PagedAttention(q, cache, li, batch.Attention, c.NumHeads, scale, attn);
            b.Linear(attn, layer.O, null, x);
            _communicator?.AllReduceSum(x); // row-parallel o_proj: each shard holds a partial sum

            b.AddRmsNorm(x, residual, layer.PostAttentionNorm, _eps, normed);
            b.Linear(normed, layer.GateUp, null, gateUp);
            b.SiluAndMul(gateUp, act);
            b.Linear(act, layer.Down, null, x);
            _communicator?.AllReduceSum(x); // row-parallel down_proj
        }
        b.AddRmsNorm(x, residual, _finalNorm, _eps, normed);

        int r = batch.NumLogitRows;
        var picked = ws.Picked.SliceRows(0, r);
        var logits = ws.Logits.SliceRows(0, r);
        if (r == 0) return logits; // a step of prefill chunks that all end mid-prompt samples nothing
        b.GatherRows(normed, batch.LogitRows.AsSpan(0, r), picked);
        b.Linear(picked, _lmHead, null, logits);
        return logits;
    }

    public void Dispose()
    {
        _ws?.Dispose();
        foreach (var l in _layers) l.Dispose();
        _embedTokens.Dispose();
        _finalNorm.Dispose();
        _lmHead.Dispose();
    }

    /// <summary>Activation buffers sized for the largest batch seen so far, reused across steps.</summary>
    private sealed class Workspace : IDisposable
    {
        public required int Capacity { get; init; }
        public required int LogitCapacity { get; init; }
        public required Tensor Residual, X, Normed, Qkv, Q, K, V, Attn, GateUp, Act, Picked, Logits;

        public static Workspace Grow(Workspace? old, IBackend b, ModelConfig c, int tokens, int logitRows)
        {
            int cap = Math.Max(tokens, old?.Capacity ?? 0);
            int lcap = Math.Max(Math.Max(logitRows, 1), old?.LogitCapacity ?? 0);
            old?.Dispose();
            int qDim = c.NumHeads * c.HeadDim, kvDim = c.NumKvHeads * c.HeadDim;
            return new Workspace
            {
                Capacity = cap,
                LogitCapacity = lcap,
                Residual = b.Allocate(DType.F32, cap, c.HiddenSize),
                X = b.Allocate(DType.F32, cap, c.HiddenSize),
                Normed = b.Allocate(DType.F32, cap, c.HiddenSize),
                Qkv = b.Allocate(DType.F32, cap, qDim + 2 * kvDim),
                Q = b.Allocate(DType.F32, cap, qDim),
                K = b.Allocate(DType.F32, cap, kvDim),
                V = b.Allocate(DType.F32, cap, kvDim),
                Attn = b.Allocate(DType.F32, cap, qDim),
                GateUp = b.Allocate(DType.F32, cap, 2 * c.IntermediateSize),
                Act = b.Allocate(DType.F32, cap, c.IntermediateSize),
                Picked = b.Allocate(DType.F32, lcap, c.HiddenSize),
                Logits = b.Allocate(DType.F32, lcap, c.VocabSize),
            };
        }

        public void Dispose()
        {
            foreach (var t in new[] { Residual, X, Normed, Qkv, Q, K, V, Attn, GateUp, Act, Picked, Logits }) t.Dispose();
        }
    }
}
