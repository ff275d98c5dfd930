namespace Loom.Silo.Models;

/// <summary>A model folder that cannot be served: the message names the file and the field or tensor.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);
