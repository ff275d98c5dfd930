namespace Loom.Silo.Models;

/// <summary>GGUF tensor types we write; values are the ggml type ids stored in the file.</summary>
public enum GgufType : uint
{
    F32 = 0,
    F16 = 1,
}
