namespace Loom.Silo.Models;

/// <summary>How a seeded tensor is initialised; see <see cref="SeededRows"/>.</summary>
public enum TensorInit
{
    Embedding,
    Linear,
    Norm,
    Bias,
}
