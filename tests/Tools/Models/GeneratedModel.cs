using Loom.Silo.Models;

namespace Loom.Tools.Models;

/// <summary>What <see cref="ModelGenerator.Generate"/> wrote.</summary>
public sealed record GeneratedModel(string Directory, ModelConfig Config, IReadOnlyList<string> WeightFiles, string? GgufPath);
