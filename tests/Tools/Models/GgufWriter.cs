using System.Text;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// A GGUF v3 file writer: metadata key/values, tensor infos, then aligned tensor data streamed from
/// callbacks. Shapes are given outermost-first (as in safetensors) and written reversed, since GGUF's
/// ne[0] is the contiguous dimension.
/// </summary>
public sealed class GgufWriter
{
    public const uint Alignment = 32;
    private const uint Version = 3;

    // GGUF metadata value type ids.
    private const uint TypeUInt32 = 4, TypeInt32 = 5, TypeFloat32 = 6, TypeBool = 7, TypeString = 8, TypeArray = 9;

    private readonly List<(string Key, uint Type, Action<BinaryWriter> Write)> _kv = [];
    private readonly List<(string Name, GgufType Type, long[] Shape, Action<Stream> Write)> _tensors = [];

    public void AddString(string key, string value) => Add(key, TypeString, w => WriteString(w, value));
    public void AddUInt32(string key, uint value) => Add(key, TypeUInt32, w => w.Write(value));
    public void AddFloat32(string key, float value) => Add(key, TypeFloat32, w => w.Write(value));
    public void AddBool(string key, bool value) => Add(key, TypeBool, w => w.Write((byte)(value ? 1 : 0)));

    public void AddStringArray(string key, IReadOnlyList<string> values) => Add(key, TypeArray, w =>
    {
        w.Write(TypeString);
        w.Write((ulong)values.Count);
        foreach (var v in values) WriteString(w, v);
    });

    public void AddFloat32Array(string key, IReadOnlyList<float> values) => Add(key, TypeArray, w =>
    {
        w.Write(TypeFloat32);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    });

    public void AddInt32Array(string key, IReadOnlyList<int> values) => Add(key, TypeArray, w =>
    {
        w.Write(TypeInt32);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    });

    /// <summary>Adds a tensor; <paramref name="write"/> must write exactly the type's bytes for the shape.</summary>
    public void AddTensor(string name, GgufType type, long[] shape, Action<Stream> write)
    {
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"tensor '{name}' added twice", nameof(name));
        _tensors.Add((name, type, shape, write));
    }

    public static long ByteLength(GgufType type, long[] shape) =>
        GgufTypes.ByteLength(type, shape.Aggregate(1L, (n, d) => checked(n * d)));

    /// <summary>Writes the file through a temporary name, so a failure never leaves a half GGUF behind.</summary>
    public void Write(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF is written little-endian");
        var tmp = path + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                using (var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true))
                {
                    w.Write("GGUF"u8);
                    w.Write(Version);
                    w.Write((ulong)_tensors.Count);
                    w.Write((ulong)_kv.Count);
                    foreach (var (key, type, write) in _kv)
                    {
                        WriteString(w, key);
                        w.Write(type);
                        write(w);
                    }
                    long offset = 0;
                    foreach (var (name, type, shape, _) in _tensors)
                    {
                        WriteString(w, name);
                        w.Write((uint)shape.Length);
                        for (int i = shape.Length - 1; i >= 0; i--) w.Write((ulong)shape[i]);
                        w.Write((uint)type);
                        w.Write((ulong)offset);
                        offset = Align(offset + ByteLength(type, shape));
                    }
                    w.Flush();
                }
                Pad(fs);
                foreach (var (name, type, shape, write) in _tensors)
                {
                    long start = fs.Position;
                    write(fs);
                    long expected = ByteLength(type, shape);
                    if (fs.Position - start != expected)
                        throw new InvalidOperationException($"{path}: tensor '{name}' wrote {fs.Position - start} bytes, expected {expected}");
                    Pad(fs);
                }
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    private void Add(string key, uint type, Action<BinaryWriter> write)
    {
        if (_kv.Any(k => k.Key == key)) throw new ArgumentException($"metadata key '{key}' added twice", nameof(key));
        _kv.Add((key, type, write));
    }

    private static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(Stream s)
    {
        long pad = Align(s.Position) - s.Position;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
