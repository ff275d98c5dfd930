using Loom.Kernels;

namespace Loom.Silo.Models;

/// <summary>One validated header entry; offsets are relative to the data section.</summary>
internal sealed record SafetensorsEntry(DType DType, int[] Shape, long Begin, long End);
