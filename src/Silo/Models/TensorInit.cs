namespace Loom.Silo.Models;

/// <summary>How a generated tensor is initialised; see <see cref="ModelGenerator"/>.</summary>
public enum TensorInit
{
    Embedding,
    Linear,
    Norm,
    Bias,
}
