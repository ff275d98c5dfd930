using System.Text;
using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

public class SafetensorsRoundTripTests
{
    private static byte[] RandomBytes(int n, int seed)
    {
        var rng = new SplitMix64((ulong)seed);
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)rng.Next();
        return b;
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    [InlineData(DType.I32)]
    public void WrittenBytesReadBackExactly(DType dtype)
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        var a = RandomBytes(3 * 5 * dtype.Size(), 1);
        var b = RandomBytes(7 * dtype.Size(), 2);
        SafetensorsWriter.Write(path,
        [
            SafetensorsTensor.FromBytes("z.last", dtype, [3, 5], a),
            SafetensorsTensor.FromBytes("a.first", dtype, [7], b),
            SafetensorsTensor.FromBytes("empty", dtype, [0, 4], Array.Empty<byte>()),
        ], SafetensorsWriter.PtMetadata);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal(["a.first", "empty", "z.last"], f.Names.Order(StringComparer.Ordinal));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(a, f.GetBytes("z.last").ToArray());
        Assert.Equal(b, f.GetBytes("a.first").ToArray());
        var v = f.Get("z.last");
        Assert.Equal(dtype, v.DType);
        Assert.Equal([3, 5], v.Shape);
        Assert.Equal("z.last", v.Name);
        Assert.Equal(a.Length, v.ByteLength);
        Assert.Equal(0, f.DataStart % 8);
        Assert.Equal(0L, f.Get("empty").ElementCount);
    }

    [Fact]
    public void HeaderIsSpacePaddedJsonWithTensorsInNameOrder()
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        SafetensorsWriter.Write(path,
        [
            SafetensorsTensor.FromBytes("b", DType.F32, [1], new byte[4]),
            SafetensorsTensor.FromBytes("a", DType.F16, [3], new byte[6]),
        ]);
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, n % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},\"b\":", header);
        Assert.EndsWith("}", header.TrimEnd(' '));
        Assert.Equal(8 + n + 10, bytes.Length);
    }

    [Fact]
    public void WriterRejectsCallbackWritingWrongByteCount()
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        var ex = Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path,
            [new SafetensorsTensor("w", DType.F32, [2], s => s.Write(new byte[4]))]));
        Assert.Contains("'w'", ex.Message);
        Assert.False(File.Exists(path));
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.0f, 0xC000)]
    [InlineData(1.00390625f, 0x3F80)] // exactly halfway, lower is even: rounds down
    [InlineData(1.01171875f, 0x3F82)] // exactly halfway, upper is even: rounds up
    public void BF16RoundsToNearestEven(float f, int expected) =>
        Assert.Equal((ushort)expected, WeightConvert.FloatToBF16(f));

    [Fact]
    public void BF16JustAboveHalfwayRoundsUp() =>
        Assert.Equal((ushort)0x3F81, WeightConvert.FloatToBF16(BitConverter.UInt32BitsToSingle(0x3F808001)));
}
