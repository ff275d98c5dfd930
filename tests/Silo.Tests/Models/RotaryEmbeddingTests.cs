using Loom.Silo.Models;

namespace Loom.Silo.Tests.Models;

public class RotaryEmbeddingTests
{
    private static ModelConfig Config(RopeScaling? scaling, double theta = 500000, int headDim = 128) => new()
    {
        Architecture = ModelArchitecture.Llama,
        ArchitectureName = "LlamaForCausalLM",
        HiddenSize = headDim * 4,
        IntermediateSize = 64,
        NumLayers = 1,
        NumHeads = 4,
        NumKvHeads = 4,
        HeadDim = headDim,
        VocabSize = 10,
        RmsNormEps = 1e-5,
        RopeTheta = theta,
        RopeScaling = scaling,
    };

    [Fact]
    public void DefaultFrequenciesFollowThetaPowers()
    {
        var inv = RotaryEmbedding.InverseFrequencies(Config(null, 10000, 64));
        Assert.Equal(32, inv.Length);
        for (int i = 0; i < inv.Length; i++) Assert.Equal(Math.Pow(10000, -2.0 * i / 64), inv[i], 1e-6 * inv[i]);
    }

    [Fact]
    public void LinearScalingDividesEveryFrequency()
    {
        var plain = RotaryEmbedding.InverseFrequencies(Config(null));
        var scaled = RotaryEmbedding.InverseFrequencies(Config(new RopeScaling("linear", 4)));
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i] / 4, scaled[i], 1e-6 * plain[i]);
    }

    [Fact]
    public void Llama3ScalingKeepsHighFrequenciesSlowsLowOnesAndBlendsTheBand()
    {
        var plain = RotaryEmbedding.InverseFrequencies(Config(null));
        var s = new RopeScaling("llama3", 8, 1, 4, 8192);
        var scaled = RotaryEmbedding.InverseFrequencies(Config(s));
        int kept = 0, slowed = 0, blended = 0;
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelen = 2 * Math.PI / plain[i];
            if (wavelen < 8192 / 4.0) { Assert.Equal(plain[i], scaled[i]); kept++; }
            else if (wavelen > 8192 / 1.0) { Assert.Equal(plain[i] / 8, scaled[i], 1e-6 * plain[i]); slowed++; }
            else
            {
                double smooth = (8192 / wavelen - 1) / (4 - 1);
                Assert.Equal((1 - smooth) * plain[i] / 8 + smooth * plain[i], scaled[i], 1e-5 * plain[i]);
                Assert.InRange(scaled[i], plain[i] / 8 * 0.999, plain[i] * 1.001);
                blended++;
            }
        }
        // Llama-3.1-8B's head_dim 128 / theta 500000 has all three bands.
        Assert.True(kept > 0 && slowed > 0 && blended > 0, $"kept {kept}, slowed {slowed}, blended {blended}");
    }
}
