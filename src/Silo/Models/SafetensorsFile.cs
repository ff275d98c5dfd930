using System.IO.MemoryMappedFiles;
using System.Text.Json;
using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>
/// One .safetensors file, memory-mapped read-only. Only the JSON header is read onto the managed
/// heap; tensor bytes are handed out as <see cref="WeightView"/> pointers into the mapping, which
/// stays valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The reference implementation refuses headers above 100 MB; so do we, before allocating.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly Dictionary<string, SafetensorsEntry> _entries;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private SafetensorsFile(string path, long dataStart, Dictionary<string, SafetensorsEntry> entries,
        IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        DataStart = dataStart;
        _entries = entries;
        Metadata = metadata;
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            // The view may start below offset 0 of the request (page alignment); PointerOffset corrects it.
            _base = p + _view.PointerOffset;
        }
        catch
        {
            _view?.Dispose();
            _map.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>File offset of the first data byte (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>The optional string→string <c>__metadata__</c> map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IReadOnlyCollection<string> Names => _entries.Keys;

    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Parses and validates the header, then maps the file.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian");
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: not found");
        long fileLength;
        byte[] header;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1))
        {
            fileLength = fs.Length;
            if (fileLength < 8)
                throw new ModelLoadException($"{path}: file is {fileLength} bytes, too short for the 8-byte safetensors header length");
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong headerLength = BitConverter.ToUInt64(len);
            if (headerLength > (ulong)(fileLength - 8))
                throw new ModelLoadException($"{path}: header length {headerLength} is larger than the file ({fileLength} bytes); not a safetensors file or truncated");
            if ((long)headerLength > MaxHeaderBytes)
                throw new ModelLoadException($"{path}: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            header = new byte[headerLength];
            fs.ReadExactly(header);
        }
        long dataStart = 8 + header.LongLength;
        var (entries, metadata) = ParseHeader(path, header, fileLength - dataStart);
        return new SafetensorsFile(path, dataStart, entries, metadata);
    }

    public WeightView Get(string name)
    {
        var e = Entry(name);
        return new WeightView((nint)(Base + DataStart + e.Begin), e.DType, (int[])e.Shape.Clone(), name);
    }

    /// <summary>The tensor's bytes as a span (tests, small tensors); fails above 2 GB.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var e = Entry(name);
        long n = e.End - e.Begin;
        if (n > int.MaxValue) throw new InvalidOperationException($"{Path}: tensor '{name}' is {n} bytes, too large for a span");
        return new ReadOnlySpan<byte>(Base + DataStart + e.Begin, (int)n);
    }

    public DType DTypeOf(string name) => Entry(name).DType;

    public int[] ShapeOf(string name) => (int[])Entry(name).Shape.Clone();

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private byte* Base => _base != null ? _base : throw new ObjectDisposedException(Path);

    private SafetensorsEntry Entry(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new ModelLoadException($"{Path}: no tensor '{name}'");

    private static (Dictionary<string, SafetensorsEntry>, IReadOnlyDictionary<string, string>) ParseHeader(
        string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new ModelLoadException($"{path}: header is not valid JSON ({e.Message})", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{path}: header must be a JSON object, got {doc.RootElement.ValueKind}");

        var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                // Metadata is advisory (e.g. {"format":"pt"}); keep string values, ignore the rest.
                if (prop.Value.ValueKind == JsonValueKind.Object)
                    foreach (var m in prop.Value.EnumerateObject())
                        if (m.Value.ValueKind == JsonValueKind.String) metadata[m.Name] = m.Value.GetString()!;
                continue;
            }
            if (!entries.TryAdd(prop.Name, ParseEntry(path, prop.Name, prop.Value, dataLength)))
                throw new ModelLoadException($"{path}: tensor '{prop.Name}' is listed twice in the header");
        }
        return (entries, metadata);
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement t, long dataLength)
    {
        string Where(string field) => $"{path}: tensor '{name}' field '{field}'";
        if (t.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{path}: tensor '{name}' must be a JSON object");

        if (!t.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new ModelLoadException($"{Where("dtype")} is missing or not a string");
        var dtypeName = dt.GetString()!;
        if (!DTypeExtensions.TryParseSafetensors(dtypeName, out var dtype))
            throw new ModelLoadException($"{path}: tensor '{name}' has unsupported dtype '{dtypeName}' (supported: F32, F16, BF16, I32)");

        if (!t.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new ModelLoadException($"{Where("shape")} is missing or not an array");
        var shape = new int[sh.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out var v) || v < 0)
                throw new ModelLoadException($"{Where("shape")} has invalid dimension {d.GetRawText()}");
            shape[i++] = v;
            try { elements = checked(elements * v); }
            catch (OverflowException) { throw new ModelLoadException($"{Where("shape")} is too large"); }
        }

        if (!t.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new ModelLoadException($"{Where("data_offsets")} is missing or not a [begin, end] pair");
        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw new ModelLoadException($"{Where("data_offsets")} must be non-negative integers with begin <= end, got {off.GetRawText()}");
        if (end > dataLength)
            throw new ModelLoadException(
                $"{path}: truncated: tensor '{name}' data_offsets [{begin}, {end}] run past the end of the data section ({dataLength} bytes)");
        long expected = elements * dtype.Size();
        if (end - begin != expected)
            throw new ModelLoadException(
                $"{path}: tensor '{name}' data_offsets [{begin}, {end}] span {end - begin} bytes, but shape [{string.Join(",", shape)}] x {dtypeName} needs {expected}");
        return new SafetensorsEntry(dtype, shape, begin, end);
    }
}
