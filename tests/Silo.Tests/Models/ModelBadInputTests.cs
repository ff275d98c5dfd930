using System.Text;
using Loom.Kernels;
using Loom.Silo.Models;
using Loom.Tools.Models;

namespace Loom.Silo.Tests.Models;

/// <summary>Every broken model folder fails with a ModelLoadException naming the file and the field or tensor.</summary>
public class ModelBadInputTests
{
    private static void WriteRaw(string path, string header, int dataBytes, long? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(declaredLength ?? h.Length));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
    }

    private static ModelLoadException Fails(string path) =>
        Assert.Throws<ModelLoadException>(() => { using var _ = SafetensorsFile.Open(path); });

    [Fact]
    public void NonJsonHeader()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, "this is not json", 16);
        var ex = Fails(path);
        Assert.Contains(path, ex.Message);
        Assert.Contains("not valid JSON", ex.Message);
    }

    [Fact]
    public void HeaderThatIsNotAnObject()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, "[1,2,3]", 0);
        Assert.Contains(path, Fails(path).Message);
    }

    [Fact]
    public void HeaderLengthLargerThanFile()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, "{}", 4, declaredLength: 1 << 20);
        var ex = Fails(path);
        Assert.Contains(path, ex.Message);
        Assert.Contains("header length 1048576", ex.Message);
    }

    [Fact]
    public void FileShorterThanLengthPrefix()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains(path, Fails(path).Message);
    }

    [Fact]
    public void TruncatedFileNamesTheTensorThatRunsPastTheEnd()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        SafetensorsWriter.Write(path,
        [
            SafetensorsTensor.FromBytes("a", DType.F32, [4], new byte[16]),
            SafetensorsTensor.FromBytes("b", DType.F32, [4], new byte[16]),
        ]);
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(fs.Length - 5);
        var ex = Fails(path);
        Assert.Contains(path, ex.Message);
        Assert.Contains("truncated", ex.Message);
        Assert.Contains("'b'", ex.Message);
    }

    [Theory]
    [InlineData("F64")]
    [InlineData("I8")]
    [InlineData("F8_E4M3")]
    public void UnsupportedDtypeNamesTheTensor(string dtype)
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, $"{{\"w.weight\":{{\"dtype\":\"{dtype}\",\"shape\":[2],\"data_offsets\":[0,16]}}}}", 16);
        var ex = Fails(path);
        Assert.Contains(path, ex.Message);
        Assert.Contains("'w.weight'", ex.Message);
        Assert.Contains($"unsupported dtype '{dtype}'", ex.Message);
    }

    [Theory]
    [InlineData("[0,12]")]     // 12 bytes for 2x2 F32 (needs 16)
    [InlineData("[8,4]")]      // end before begin
    [InlineData("[0]")]        // not a pair
    [InlineData("\"0,16\"")]   // not an array
    public void OffsetsInconsistentWithShapeNameTheTensor(string offsets)
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, $"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":{offsets}}}}}", 32);
        var ex = Fails(path);
        Assert.Contains(path, ex.Message);
        Assert.Contains("'w'", ex.Message);
    }

    [Theory]
    [InlineData("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "dtype")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "shape")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "shape")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets")]
    [InlineData("{\"w\":5}", "'w'")]
    public void MissingOrMalformedFieldsAreNamed(string header, string field)
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, header, 8);
        var ex = Fails(path);
        Assert.Contains(path, ex.Message);
        Assert.Contains(field, ex.Message);
    }

    [Fact]
    public void MetadataIsIgnoredAndUnsortedOffsetsAreAllowed()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        WriteRaw(path, "{\"__metadata__\":{\"format\":\"pt\",\"n\":3},\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
            + "\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"alias\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(3, f.Names.Count);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(f.Get("a").Data, f.Get("alias").Data);
    }

    [Fact]
    public void ConfigMissingHiddenSizeNamesFileAndField()
    {
        using var dir = new TempDir();
        var json = HfConfigJson.Config(ModelPresets.Tiny, DType.F32).Replace("\"hidden_size\"", "\"hidden_size_typo\"");
        File.WriteAllText(dir.File("config.json"), json);
        var ex = Assert.Throws<ModelLoadException>(() => ModelConfig.Load(dir.Path));
        Assert.Contains("config.json", ex.Message);
        Assert.Contains("'hidden_size'", ex.Message);
    }

    [Fact]
    public void UnknownArchitectureIsNamed()
    {
        using var dir = new TempDir();
        var json = HfConfigJson.Config(ModelPresets.Tiny, DType.F32).Replace("LlamaForCausalLM", "GPTNeoXForCausalLM");
        File.WriteAllText(dir.File("config.json"), json);
        var ex = Assert.Throws<ModelLoadException>(() => ModelConfig.Load(dir.Path));
        Assert.Contains("config.json", ex.Message);
        Assert.Contains("GPTNeoXForCausalLM", ex.Message);
    }

    [Fact]
    public void MissingTensorSaysWhereItLooked()
    {
        using var dir = new TempDir();
        ModelGenerator.Generate("tiny", dir.Path);
        using var w = ModelWeights.Open(dir.Path);
        var ex = Assert.Throws<ModelLoadException>(() => w.Get("model.layers.9.mlp.up_proj.weight"));
        Assert.Contains("missing tensor 'model.layers.9.mlp.up_proj.weight'", ex.Message);
        Assert.Contains(dir.File("model.safetensors"), ex.Message);
    }

    [Fact]
    public void WrongShapeNamesShardTensorAndBothShapes()
    {
        using var dir = new TempDir();
        ModelGenerator.Generate("tiny", dir.Path, new GenerateOptions { ShardSizeBytes = 100_000 });
        using var w = ModelWeights.Open(dir.Path);
        const string name = "model.layers.1.mlp.up_proj.weight";
        var ex = Assert.Throws<ModelLoadException>(() => w.Get(name, 64, 128));
        Assert.Equal($"{w.FileOf(name)}: tensor '{name}' has shape [128,64], expected [64,128]", ex.Message);
        Assert.Contains("-of-", ex.Message);
    }

    [Fact]
    public void MissingShardNamesIndexAndShard()
    {
        using var dir = new TempDir();
        var m = ModelGenerator.Generate("tiny", dir.Path, new GenerateOptions { ShardSizeBytes = 100_000 });
        File.Delete(m.WeightFiles[^1]);
        var ex = Assert.Throws<ModelLoadException>(() => ModelWeights.Open(dir.Path));
        Assert.Contains(dir.File(ModelWeights.IndexFileName), ex.Message);
        Assert.Contains(Path.GetFileName(m.WeightFiles[^1]), ex.Message);
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("{\"metadata\":{}}", "'weight_map'")]
    [InlineData("{\"weight_map\":{\"a\":\"../evil.safetensors\"}}", "'a'")]
    [InlineData("{\"weight_map\":{\"a\":3}}", "'a'")]
    public void BrokenIndexIsNamed(string index, string expected)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File(ModelWeights.IndexFileName), index);
        var ex = Assert.Throws<ModelLoadException>(() => ModelWeights.Open(dir.Path));
        Assert.Contains(ModelWeights.IndexFileName, ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void IndexListingATensorTheShardLacksNamesBoth()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir.File("s1.safetensors"), [SafetensorsTensor.FromBytes("a", DType.F32, [1], new byte[4])]);
        File.WriteAllText(dir.File(ModelWeights.IndexFileName), "{\"weight_map\":{\"a\":\"s1.safetensors\",\"ghost\":\"s1.safetensors\"}}");
        var ex = Assert.Throws<ModelLoadException>(() => ModelWeights.Open(dir.Path));
        Assert.Contains(dir.File("s1.safetensors"), ex.Message);
        Assert.Contains("'ghost'", ex.Message);
    }

    [Fact]
    public void FolderWithoutWeightsIsNamed()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<ModelLoadException>(() => ModelWeights.Open(dir.Path));
        Assert.Contains(dir.Path, ex.Message);
        Assert.Contains("model.safetensors", ex.Message);
    }

    [Fact]
    public void CorruptShardInsideIndexedModelNamesTheShard()
    {
        using var dir = new TempDir();
        var m = ModelGenerator.Generate("tiny", dir.Path, new GenerateOptions { ShardSizeBytes = 100_000 });
        File.WriteAllBytes(m.WeightFiles[0], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2]);
        var ex = Assert.Throws<ModelLoadException>(() => ModelWeights.Open(dir.Path));
        Assert.Contains(m.WeightFiles[0], ex.Message);
    }

    [Fact]
    public void GgufExportRefusesAVocabTooSmallForItsTokenizer()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<ArgumentException>(() =>
            ModelGenerator.Generate("tiny", dir.Path, new GenerateOptions { Vocab = 100, GgufPath = dir.File("m.gguf") }));
        Assert.Contains("131", ex.Message);
    }

    [Fact]
    public void DisposedWeightsRefuseAccess()
    {
        using var dir = new TempDir();
        ModelGenerator.Generate("tiny", dir.Path);
        var w = ModelWeights.Open(dir.Path);
        w.Dispose();
        Assert.Throws<ObjectDisposedException>(() => w.Get("model.norm.weight"));
        w.Dispose(); // idempotent
    }
}
