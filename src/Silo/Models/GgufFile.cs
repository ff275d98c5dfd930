// Written here: the GGUF readers on NuGet wrap native llama.cpp (LLamaSharp) or do not memory-map; Loom needs a managed, mapped one.
using System.IO.MemoryMappedFiles;
using Loom.Kernels;
using System.Text;

namespace Loom.Silo.Models;

/// <summary>One tensor's entry in a GGUF file: ggml dims (ne[0] is the contiguous one) and where its bytes are.</summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, uint TypeId, long Offset, long ByteLength)
{
    public GgufType Type => (GgufType)TypeId;

    /// <summary>The shape in row-major (Hugging Face) order: ggml's dims reversed.</summary>
    public int[] Shape => Dims.Reverse().Select(d => checked((int)d)).ToArray();
}

/// <summary>
/// A GGUF file (versions 2 and 3), memory-mapped: metadata parsed into .NET values (strings,
/// numbers, arrays of them), tensors handed out as pointers into the mapping. Every structural
/// error names what was being read: truncated headers, a wrong magic, an unknown type, tensor data
/// past the end of the file.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    private const uint Magic = 0x46554747; // "GGUF" little-endian
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private GgufFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* b, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = b;
        Length = length;
    }

    public string Path { get; }
    public long Length { get; }
    public uint Version { get; private set; }
    public IReadOnlyDictionary<string, object> Metadata { get; private set; } = new Dictionary<string, object>();
    public IReadOnlyDictionary<string, GgufTensorInfo> Tensors { get; private set; } = new Dictionary<string, GgufTensorInfo>();
    public long DataOffset { get; private set; }

    public static GgufFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new ModelLoadException($"{path}: not found");
        if (info.Length < 24) throw new ModelLoadException($"{path}: truncated: {info.Length} bytes is shorter than a GGUF header");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* b = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref b);
        var file = new GgufFile(path, map, view, b + view.PointerOffset, info.Length);
        try
        {
            file.Parse();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Pointer to a tensor's bytes in the mapping (valid until <see cref="Dispose"/>).</summary>
    public nint DataOf(GgufTensorInfo t) => _base != null ? (nint)(_base + DataOffset + t.Offset) : throw new ObjectDisposedException(Path);

    public bool TryGet<T>(string key, out T value)
    {
        if (Metadata.TryGetValue(key, out var v) && TryConvert(v, out value)) return true;
        value = default!;
        return false;
    }

    /// <summary>A metadata value, converted to <typeparamref name="T"/> (numbers widen); errors name the key.</summary>
    public T Get<T>(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) throw new ModelLoadException($"{Path}: missing metadata key '{key}'");
        if (!TryConvert(v, out T value)) throw new ModelLoadException($"{Path}: metadata key '{key}' is {Describe(v)}, expected {typeof(T).Name}");
        return value;
    }

    private static string Describe(object v) => v is Array a ? $"an array of {a.Length} {a.GetType().GetElementType()!.Name}" : $"a {v.GetType().Name}";

    private static bool TryConvert<T>(object v, out T value)
    {
        if (v is T t)
        {
            value = t;
            return true;
        }

        try
        {
            if (typeof(T) == typeof(int) || typeof(T) == typeof(long) || typeof(T) == typeof(double) || typeof(T) == typeof(float) || typeof(T) == typeof(uint))
            {
                if (v is IConvertible && v is not string && v is not bool)
                {
                    value = (T)Convert.ChangeType(v, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
                    return true;
                }
            }
        }
        catch (OverflowException)
        {
        }

        value = default!;
        return false;
    }

    private void Parse()
    {
        var r = new Cursor(_base, Length, Path);
        uint magic = r.U32("magic");
        if (magic != Magic)
            throw new ModelLoadException($"{Path}: wrong magic 0x{magic:X8} (a GGUF file starts with \"GGUF\"); not a GGUF file");
        Version = r.U32("version");
        if (Version is not (2 or 3)) throw new ModelLoadException($"{Path}: GGUF version {Version} is not supported (2 and 3 are)");
        long tensorCount = r.I64("tensor_count"), kvCount = r.I64("metadata_kv_count");
        if (tensorCount < 0 || kvCount < 0 || tensorCount > Length || kvCount > Length)
            throw new ModelLoadException($"{Path}: implausible counts ({tensorCount} tensors, {kvCount} metadata keys): corrupt header");
        var meta = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            string key = r.String($"metadata key #{i}");
            uint type = r.U32($"type of '{key}'");
            meta[key] = r.Value(type, key);
        }

        Metadata = meta;
        long alignment = meta.TryGetValue("general.alignment", out var al) && TryConvert(al, out long a) ? a : 32;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new ModelLoadException($"{Path}: general.alignment {alignment} is not a power of two");
        var tensors = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
        var infos = new List<(string Name, long[] Dims, uint Type, long Offset)>();
        for (long i = 0; i < tensorCount; i++)
        {
            string name = r.String($"tensor #{i} name");
            uint nd = r.U32($"tensor '{name}' n_dims");
            if (nd is 0 or > 4) throw new ModelLoadException($"{Path}: tensor '{name}' has {nd} dimensions (1 to 4 allowed)");
            var dims = new long[nd];
            for (int d = 0; d < nd; d++)
            {
                dims[d] = r.I64($"tensor '{name}' dim {d}");
                if (dims[d] < 0 || dims[d] > int.MaxValue) throw new ModelLoadException($"{Path}: tensor '{name}' has dimension {dims[d]}");
            }

            infos.Add((name, dims, r.U32($"tensor '{name}' type"), r.I64($"tensor '{name}' offset")));
        }

        DataOffset = (r.Position + alignment - 1) / alignment * alignment;
        foreach (var (name, dims, type, offset) in infos)
        {
            long elements = dims.Aggregate(1L, (n, d) => n * d);
            if (GgufTypes.ToDType((GgufType)type) is not { } dtype)
                throw new ModelLoadException($"{Path}: tensor '{name}' has type {GgufTypes.Name(type)}, which Loom does not load (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
            if (elements % dtype.BlockElements() != 0 || dims[0] % dtype.BlockElements() != 0)
                throw new ModelLoadException($"{Path}: tensor '{name}' row of {dims[0]} is not a whole number of {GgufTypes.Name(type)} blocks");
            long bytes = dtype.ByteCount(elements);
            if (offset < 0 || DataOffset + offset + bytes > Length)
                throw new ModelLoadException($"{Path}: truncated: tensor '{name}' needs bytes [{DataOffset + offset}, {DataOffset + offset + bytes}) but the file has {Length}");
            if (!tensors.TryAdd(name, new GgufTensorInfo(name, dims, type, offset, bytes)))
                throw new ModelLoadException($"{Path}: tensor '{name}' is listed twice");
        }

        Tensors = tensors;
    }

    public void Dispose()
    {
        if (_base != null)
        {
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }

        _view.Dispose();
        _map.Dispose();
    }

    /// <summary>A bounds-checked little-endian reader over the mapping.</summary>
    private ref struct Cursor(byte* b, long length, string path)
    {
        public long Position;

        private byte* Take(long n, string what)
        {
            if (n < 0 || Position + n > length)
                throw new ModelLoadException($"{path}: truncated while reading {what} (needs {n} bytes at offset {Position}, the file has {length})");
            byte* p = b + Position;
            Position += n;
            return p;
        }

        public uint U32(string what) => *(uint*)Take(4, what);

        public long I64(string what) => *(long*)Take(8, what);

        public string String(string what)
        {
            long n = I64(what);
            if (n < 0 || n > 1 << 30) throw new ModelLoadException($"{path}: string length {n} while reading {what}: corrupt");
            return Encoding.UTF8.GetString(Take(n, what), (int)n);
        }

        public object Value(uint type, string key) => type switch
        {
            0 => *Take(1, key),
            1 => *(sbyte*)Take(1, key),
            2 => *(ushort*)Take(2, key),
            3 => *(short*)Take(2, key),
            4 => U32(key),
            5 => *(int*)Take(4, key),
            6 => *(float*)Take(4, key),
            7 => *Take(1, key) != 0,
            8 => String(key),
            9 => Array(key),
            10 => *(ulong*)Take(8, key),
            11 => I64(key),
            12 => *(double*)Take(8, key),
            _ => throw new ModelLoadException($"{path}: metadata key '{key}' has unknown value type {type}"),
        };

        private object Array(string key)
        {
            uint type = U32(key);
            long n = I64(key);
            if (n < 0 || n > length) throw new ModelLoadException($"{path}: metadata array '{key}' has length {n}: corrupt");
            switch (type)
            {
                case 8:
                    var s = new string[n];
                    for (long i = 0; i < n; i++) s[i] = String(key);
                    return s;
                case 6: return new ReadOnlySpan<float>(Take(4 * n, key), (int)n).ToArray();
                case 5: return new ReadOnlySpan<int>(Take(4 * n, key), (int)n).ToArray();
                case 4: return new ReadOnlySpan<uint>(Take(4 * n, key), (int)n).ToArray();
                default:
                    var o = new object[n];
                    for (long i = 0; i < n; i++) o[i] = Value(type, key);
                    return o;
            }
        }
    }
}
