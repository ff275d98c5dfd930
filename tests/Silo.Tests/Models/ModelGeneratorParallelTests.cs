using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>
/// The generator fills blocks of rows in parallel: the bytes must equal a row-by-row fill, for
/// any block size (blocks of one row, blocks that do not divide the row count, one block).
/// </summary>
public sealed class ModelGeneratorParallelTests
{
    private static byte[] RowByRow(TensorSpec spec, GenerateOptions opts)
    {
        int rows = spec.Shape.Length == 1 ? 1 : spec.Shape[0];
        int cols = spec.Shape.Length == 1 ? spec.Shape[0] : spec.Shape[1];
        var values = new float[cols];
        var row = new byte[cols * opts.DType.Size()];
        using var ms = new MemoryStream();
        for (int r = 0; r < rows; r++)
        {
            SeededRows.FillRow(opts.Seed, spec, r, values);
            WeightConvert.Encode(values, opts.DType, row);
            ms.Write(row);
        }
        return ms.ToArray();
    }

    [Theory]
    [InlineData(DType.BF16, 1)]
    [InlineData(DType.F32, 3)]
    [InlineData(DType.F16, 7)]
    [InlineData(DType.BF16, 1 << 30)]
    public void ParallelBlocksWriteTheRowByRowBytes(DType dtype, int blockRowsWanted)
    {
        var opts = new GenerateOptions { DType = dtype, Seed = 9 };
        var config = ModelConfig.Parse(HfConfigJson.Config(ModelPresets.TinyQwen2, dtype));
        foreach (var spec in HfTensorLayout.For(config))
        {
            int cols = spec.Shape[^1];
            int blockBytes = (int)Math.Min(int.MaxValue, (long)blockRowsWanted * cols * dtype.Size());
            using var ms = new MemoryStream();
            ModelGenerator.WriteRows(spec, opts, ms, blockBytes);
            Assert.True(RowByRow(spec, opts).AsSpan().SequenceEqual(ms.ToArray()), $"{spec.Name} differs with blocks of {blockRowsWanted} rows");
        }
    }
}
