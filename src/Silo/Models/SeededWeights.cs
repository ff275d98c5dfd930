using System.Runtime.InteropServices;
using System.Text.Json;
using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// The weights of a random-weight model, computed in memory from a seed (<see cref="SeededRows"/>)
/// instead of read from a file: the built-in demo model needs no safetensors writer in the runtime,
/// and its folder holds only config.json, the tokenizer and <see cref="MarkerFileName"/>. The bytes
/// equal those the model generator writes for the same seed and dtype.
/// </summary>
/// <remarks>
/// Each tensor is computed on first <see cref="Get"/> into native memory owned here (a tensor-parallel
/// load asks for each tensor once per rank), so keep this alive while the backend may still read the
/// views, as with a mapped checkpoint.
/// </remarks>
public sealed unsafe class SeededWeights : IWeights, IDisposable
{
    /// <summary>A model folder holding this file takes its weights from the seed and dtype it names.</summary>
    public const string MarkerFileName = "loom-seeded.json";

    private readonly Dictionary<string, TensorSpec> _specs;
    private readonly Dictionary<string, WeightView> _cache = new(StringComparer.Ordinal);
    private readonly List<nint> _owned = [];
    private bool _disposed;

    public SeededWeights(ModelConfig config, ulong seed, DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"seeded weights must be F32, F16 or BF16, not {dtype}", nameof(dtype));
        Config = config;
        Seed = seed;
        DType = dtype;
        _specs = HfTensorLayout.For(config).ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    public ModelConfig Config { get; }
    public ulong Seed { get; }
    public DType DType { get; }

    public bool Contains(string name) => _specs.ContainsKey(name);

    public WeightView Get(string name, params int[] expectedShape)
    {
        if (!_specs.TryGetValue(name, out var spec)) throw new ModelLoadException($"missing tensor '{name}' (seeded weights, seed {Seed})");
        if (expectedShape.Length > 0 && !spec.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new ModelLoadException($"seeded weights: tensor '{name}' has shape {ModelWeights.FormatShape(spec.Shape)}, expected {ModelWeights.FormatShape(expectedShape)}");
        lock (_cache)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_cache.TryGetValue(name, out var cached)) return cached;
            var (rows, cols) = SeededRows.RowsOf(spec);
            long bytes = (long)rows * cols * DType.Size();
            var data = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, bytes), 64);
            _owned.Add((nint)data);
            SeededRows.EncodeRows(Seed, spec, DType, 0, rows, data);
            var view = new WeightView((nint)data, DType, spec.Shape, name);
            _cache[name] = view;
            return view;
        }
    }

    /// <summary>Marks <paramref name="dir"/> (which holds config.json) as taking its weights from <paramref name="seed"/>.</summary>
    public static void WriteMarker(string dir, ulong seed, DType dtype)
    {
        using var fs = File.Create(Path.Combine(dir, MarkerFileName));
        using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteNumber("seed", seed);
        w.WriteString("dtype", HfConfigJson.TorchDtype(dtype));
        w.WriteEndObject();
    }

    /// <summary>The folder's seeded weights, or null when it has no <see cref="MarkerFileName"/>.</summary>
    public static SeededWeights? TryOpen(string dir, ModelConfig config)
    {
        var path = Path.Combine(dir, MarkerFileName);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("seed", out var s) || !s.TryGetUInt64(out ulong seed)
                || !root.TryGetProperty("dtype", out var d) || d.ValueKind != JsonValueKind.String)
                throw new ModelLoadException($"{path}: expected {{\"seed\": <uint64>, \"dtype\": \"float32|float16|bfloat16\"}}");
            var dtype = d.GetString() switch
            {
                "float32" => DType.F32,
                "float16" => DType.F16,
                "bfloat16" => DType.BF16,
                var other => throw new ModelLoadException($"{path}: dtype '{other}' is not float32, float16 or bfloat16"),
            };
            return new SeededWeights(config, seed, dtype);
        }
        catch (JsonException e) { throw new ModelLoadException($"{path}: not valid JSON ({e.Message})", e); }
    }

    public void Dispose()
    {
        lock (_cache)
        {
            foreach (var p in _owned) NativeMemory.AlignedFree((void*)p);
            _owned.Clear();
            _cache.Clear();
            _disposed = true;
        }
    }
}
