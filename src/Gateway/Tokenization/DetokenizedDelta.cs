namespace Loom.Gateway.Tokenization;

/// <summary>What one generated token adds to the output: the text to send now (possibly empty
/// while a split character or a possible stop string is held back) and whether a stop string
/// fired, after which the request should finish.</summary>
public readonly record struct DetokenizedDelta(string Text, bool Stopped);
