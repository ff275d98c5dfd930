namespace Loom.Silo.Models;

/// <summary>
/// Inverse frequencies for rotary embeddings, as transformers' ROPE_INIT_FUNCTIONS compute them
/// ("default", "linear", "llama3"), or from a GGUF file's per-pair factors. The backend turns them into cos/sin per position on the fly,
/// so no max_position-sized table is kept.
/// </summary>
public static class RotaryEmbedding
{
    public static float[] InverseFrequencies(ModelConfig config)
    {
        int dim = config.HeadDim;
        var inv = new float[dim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = (float)(1.0 / Math.Pow(config.RopeTheta, 2.0 * i / dim));

        if (config.RopeFreqFactors is { } factors)
        {
            if (factors.Count != inv.Length)
                throw new ModelLoadException($"rope_freqs has {factors.Count} factors, expected head_dim / 2 = {inv.Length}");
            for (int i = 0; i < inv.Length; i++) inv[i] /= factors[i];
        }

        var s = config.RopeScaling;
        if (s is null) return inv;
        switch (s.Type)
        {
            case "linear":
                for (int i = 0; i < inv.Length; i++) inv[i] = (float)(inv[i] / s.Factor);
                break;
            case "llama3":
                // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
                double lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
                double highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
                for (int i = 0; i < inv.Length; i++)
                {
                    double f = inv[i];
                    double wavelen = 2 * Math.PI / f;
                    if (wavelen > lowWavelen) f /= s.Factor;
                    else if (wavelen >= highWavelen)
                    {
                        double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                        f = (1 - smooth) * f / s.Factor + smooth * f;
                    }
                    inv[i] = (float)f;
                }
                break;
            default:
                throw new ModelLoadException($"config.json: unsupported rope_scaling type '{s.Type}'");
        }
        return inv;
    }
}
