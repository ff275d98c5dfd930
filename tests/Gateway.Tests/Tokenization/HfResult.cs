namespace Loom.Gateway.Tests.Tokenization;

/// <summary>One text's result from NpmTokenizers.BatchScript (property names follow its JSON).</summary>
#pragma warning disable IDE1006 // JSON names
internal sealed record HfResult(int[] ids, int[] idsSpecial, string decoded, string decodedSkip);
#pragma warning restore IDE1006
