namespace Loom.Silo.Models;

/// <summary>One tensor a model folder must hold: HF name, HF shape (outermost first), and its init kind.</summary>
public sealed record TensorSpec(string Name, int[] Shape, TensorInit Init);
