using System.Text.Json;
using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// All weights of a Hugging Face model folder: <c>model.safetensors</c>, or the shards listed in
/// <c>model.safetensors.index.json</c>. Every file stays memory-mapped until <see cref="Dispose"/>;
/// views handed out are only valid until then.
/// </summary>
public sealed class ModelWeights : IWeights, IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _byName;
    private readonly string _lookedIn;

    private ModelWeights(string dir, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> byName, string lookedIn)
    {
        Directory = dir;
        _files = files;
        _byName = byName;
        _lookedIn = lookedIn;
    }

    public string Directory { get; }

    public IReadOnlyCollection<string> Names => _byName.Keys;

    /// <summary>The mapped files, in shard order.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    public static ModelWeights Open(string modelDir)
    {
        var indexPath = Path.Combine(modelDir, IndexFileName);
        var singlePath = Path.Combine(modelDir, SingleFileName);
        if (File.Exists(indexPath)) return OpenSharded(modelDir, indexPath);
        if (!File.Exists(singlePath))
            throw new ModelLoadException($"{modelDir}: no {SingleFileName} or {IndexFileName} (expected Hugging Face safetensors weights)");
        var file = SafetensorsFile.Open(singlePath);
        var byName = file.Names.ToDictionary(n => n, _ => file, StringComparer.Ordinal);
        return new ModelWeights(modelDir, [file], byName, singlePath);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Full path of the file holding <paramref name="name"/>.</summary>
    public string FileOf(string name) => Lookup(name).Path;

    /// <summary>
    /// The tensor, checked against <paramref name="expectedShape"/> when one is given, so a config
    /// that disagrees with its checkpoint fails at load with the file and tensor named.
    /// </summary>
    public WeightView Get(string name, params int[] expectedShape)
    {
        var file = Lookup(name);
        var view = file.Get(name);
        if (expectedShape.Length > 0 && !view.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new ModelLoadException(
                $"{file.Path}: tensor '{name}' has shape {FormatShape(view.Shape)}, expected {FormatShape(expectedShape)}");
        return view;
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }

    public static string FormatShape(IEnumerable<int> shape) => "[" + string.Join(",", shape) + "]";

    private SafetensorsFile Lookup(string name) =>
        _byName.TryGetValue(name, out var f) ? f : throw new ModelLoadException($"missing tensor '{name}' (looked in {_lookedIn})");

    private static ModelWeights OpenSharded(string dir, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var files = new List<SafetensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var shard in weightMap.Values.Distinct().Order(StringComparer.Ordinal))
            {
                var shardPath = Path.Combine(dir, shard);
                if (!File.Exists(shardPath))
                    throw new ModelLoadException($"{indexPath}: shard '{shard}' listed in weight_map is missing ({shardPath} not found)");
                var f = SafetensorsFile.Open(shardPath);
                files.Add(f);
                byShard[shard] = f;
            }

            var byName = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                var f = byShard[shard];
                if (!f.Contains(name))
                    throw new ModelLoadException($"{f.Path}: tensor '{name}' listed in {IndexFileName} weight_map is not in this file");
                byName[name] = f;
            }
            // Tensors a shard holds but the index forgot are still served; the index wins on duplicates.
            foreach (var f in files)
                foreach (var n in f.Names) byName.TryAdd(n, f);
            return new ModelWeights(dir, files, byName, $"{indexPath} and its {files.Count} shard(s)");
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath)); }
        catch (JsonException e) { throw new ModelLoadException($"{indexPath}: not valid JSON ({e.Message})", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object
            || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{indexPath}: missing field 'weight_map' (an object of tensor name -> shard file)");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new ModelLoadException($"{indexPath}: weight_map entry '{p.Name}' must be a file name string");
            var shard = p.Value.GetString()!;
            // A shard name is a plain file in the model folder; anything else is a broken or hostile index.
            if (shard.Length == 0 || shard != Path.GetFileName(shard))
                throw new ModelLoadException($"{indexPath}: weight_map entry '{p.Name}' names '{shard}', which is not a file in the model folder");
            result[p.Name] = shard;
        }
        return result;
    }
}
