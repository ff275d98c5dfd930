using Loom.Kernels;
using System.Text.Json;
using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>
/// Writes .safetensors files: 8-byte little-endian header length, a JSON header padded with spaces
/// to a multiple of 8 (so every tensor starts 8-aligned when sizes allow), then the tensor bytes in
/// name order.
/// </summary>
public static class SafetensorsWriter
{
    public static readonly IReadOnlyDictionary<string, string> PtMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> through a temporary file, so a
    /// crash never leaves a half-written file under the final name.
    /// </summary>
    public static void Write(string path, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian");
        var sorted = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Name == sorted[i - 1].Name) throw new ArgumentException($"tensor '{sorted[i].Name}' given twice", nameof(tensors));

        var header = BuildHeader(sorted, metadata);
        var tmp = path + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BitConverter.TryWriteBytes(len, (ulong)header.Length);
                fs.Write(len);
                fs.Write(header);
                foreach (var t in sorted)
                {
                    long start = fs.Position;
                    t.WriteData(fs);
                    long written = fs.Position - start;
                    if (written != t.ByteLength)
                        throw new InvalidOperationException($"{path}: tensor '{t.Name}' wrote {written} bytes, expected {t.ByteLength}");
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

    /// <summary>The space-padded JSON header for tensors already in name order.</summary>
    public static byte[] BuildHeader(IReadOnlyList<SafetensorsTensor> sorted, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in sorted)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += t.ByteLength;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }
}
