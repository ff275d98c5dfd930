using System.Text.Json;
using Loom.Kernels;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// Writes random-weight models in the exact Hugging Face folder layout (config.json,
/// generation_config.json, model.safetensors or shards + index), deterministically from a seed,
/// optionally with a GGUF of the same weights for llama.cpp.
/// </summary>
/// <remarks>
/// The values come from the runtime's <see cref="SeededRows"/> (the demo model's
/// <see cref="SeededWeights"/> computes the same bytes in memory). Blocks of rows are filled in
/// parallel and streamed, so memory stays at two blocks (2 × 32 MB) even for llama3-8b.
/// </remarks>
public static class ModelGenerator
{
    public static IReadOnlyList<string> PresetNames => ModelPresets.Names;

    public static GeneratedModel Generate(string presetName, string outDir, GenerateOptions? opts = null) =>
        Generate(ModelPresets.Get(presetName), outDir, opts);

    public static GeneratedModel Generate(ModelPreset preset, string outDir, GenerateOptions? opts = null)
    {
        opts ??= new GenerateOptions();
        if (opts.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"weights must be F32, F16 or BF16, not {opts.DType}", nameof(opts));
        if (opts.ShardSizeBytes <= 0) throw new ArgumentException("ShardSizeBytes must be positive", nameof(opts));
        var p = Apply(preset, opts);
        // Fail before writing gigabytes of safetensors that the GGUF step would then refuse.
        if (opts.GgufPath is not null && p.Vocab < GgufModelWriter.MinVocab)
            throw new ArgumentException($"GGUF export needs vocab >= {GgufModelWriter.MinVocab} for its minimal tokenizer, got {p.Vocab}", nameof(opts));

        Directory.CreateDirectory(outDir);
        // Stale weights from an earlier run (e.g. shards when this run is single-file) would confuse loaders.
        foreach (var old in Directory.EnumerateFiles(outDir, "model*.safetensors*")) File.Delete(old);
        // So would a seed marker (a demo model's folder), which loaders prefer to the files.
        File.Delete(Path.Combine(outDir, SeededWeights.MarkerFileName));
        File.WriteAllText(Path.Combine(outDir, "config.json"), HfConfigJson.Config(p, opts.DType));
        File.WriteAllText(Path.Combine(outDir, "generation_config.json"), HfConfigJson.GenerationConfig(p));
        var config = ModelConfig.Load(outDir);

        var specs = HfTensorLayout.For(config);
        var files = WriteWeights(outDir, specs, opts);

        if (opts.GgufPath is { } gguf)
        {
            using var weights = ModelWeights.Open(outDir);
            GgufModelWriter.Write(config, weights, gguf, opts.GgufType, p.Name);
        }
        return new GeneratedModel(outDir, config, files, opts.GgufPath);
    }

    /// <summary>The preset with the option overrides applied (token ids fall back to 1/2 if the vocab shrank below them).</summary>
    public static ModelPreset Apply(ModelPreset preset, GenerateOptions opts)
    {
        var p = preset;
        if (opts.Layers is int layers)
        {
            if (layers < 1) throw new ArgumentException("Layers must be >= 1", nameof(opts));
            p = p with { Layers = layers };
        }
        if (opts.Vocab is int vocab)
        {
            if (vocab < 3) throw new ArgumentException("Vocab must be >= 3", nameof(opts));
            p = p with { Vocab = vocab };
            if (p.BosTokenId >= vocab || p.EosTokenId >= vocab) p = p with { BosTokenId = 1, EosTokenId = 2 };
        }
        return p;
    }

    private static List<string> WriteWeights(string dir, IReadOnlyList<TensorSpec> specs, GenerateOptions opts)
    {
        long Bytes(TensorSpec s) => s.Shape.Aggregate((long)opts.DType.Size(), (n, d) => n * d);
        // Greedy in model order, as transformers' save_pretrained shards: a new shard starts when
        // the next tensor would overflow the current one.
        var shards = new List<List<TensorSpec>> { new() };
        long current = 0;
        foreach (var s in specs)
        {
            long b = Bytes(s);
            if (current > 0 && current + b > opts.ShardSizeBytes) { shards.Add([]); current = 0; }
            shards[^1].Add(s);
            current += b;
        }

        var written = new List<string>();
        if (shards.Count == 1)
        {
            var path = Path.Combine(dir, ModelWeights.SingleFileName);
            SafetensorsWriter.Write(path, shards[0].Select(s => ToTensor(s, opts)), SafetensorsWriter.PtMetadata);
            written.Add(path);
            return written;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            var name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            var path = Path.Combine(dir, name);
            SafetensorsWriter.Write(path, shards[i].Select(s => ToTensor(s, opts)), SafetensorsWriter.PtMetadata);
            foreach (var s in shards[i]) weightMap[s.Name] = name;
            written.Add(path);
        }
        WriteIndex(Path.Combine(dir, ModelWeights.IndexFileName), specs.Sum(Bytes), weightMap);
        return written;
    }

    private static SafetensorsTensor ToTensor(TensorSpec spec, GenerateOptions opts) =>
        new(spec.Name, opts.DType, spec.Shape, stream => WriteRows(spec, opts, stream));

    /// <summary>Rows per parallel block are chosen so that a block holds about this many bytes.</summary>
    internal const int BlockBytes = 32 << 20;

    /// <summary>
    /// Writes the tensor's rows in order, a block of rows at a time (<see cref="SeededRows.EncodeRows"/>
    /// fills a block in parallel). Two buffers let the next block fill while the previous one is written.
    /// </summary>
    internal static unsafe void WriteRows(TensorSpec spec, GenerateOptions opts, Stream stream, int blockBytes = BlockBytes)
    {
        var (rows, cols) = SeededRows.RowsOf(spec);
        int rowBytes = cols * opts.DType.Size();
        int blockRows = Math.Clamp(blockBytes / rowBytes, 1, rows);
        var buffers = new byte[2][];
        Task? writing = null;
        for (int start = 0, i = 0; start < rows; start += blockRows, i++)
        {
            int n = Math.Min(blockRows, rows - start);
            var buffer = buffers[i & 1] ??= new byte[(long)blockRows * rowBytes];
            fixed (byte* p = buffer) SeededRows.EncodeRows(opts.Seed, spec, opts.DType, start, n, p);
            // The other buffer is free once its write is done; a write error surfaces here.
            writing?.GetAwaiter().GetResult();
            int length = n * rowBytes;
            writing = Task.Run(() => stream.Write(buffer, 0, length));
        }
        writing?.GetAwaiter().GetResult();
    }

    private static void WriteIndex(string path, long totalSize, SortedDictionary<string, string> weightMap)
    {
        using var fs = File.Create(path);
        using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartObject("metadata");
        w.WriteNumber("total_size", totalSize);
        w.WriteEndObject();
        w.WriteStartObject("weight_map");
        foreach (var (k, v) in weightMap) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
