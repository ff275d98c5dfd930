using Loom.Silo.Blocks;

namespace Loom.Silo.Engine;

/// <summary>
/// A structured output's state for one sequence (a JSON schema, regex, choice or grammar compiled
/// to an automaton over the vocabulary): which tokens may come next, advanced by each accepted
/// token. The sampling algorithm draws only among the allowed tokens (a bitmask per slot, applied
/// on the host or uploaded to the device).
/// </summary>
public interface ITokenConstraint
{
    /// <summary>Sets bit t of <paramref name="allowed"/> (word t / 32) for every token t that may come next; EOS only where the constraint accepts.</summary>
    void FillAllowed(Span<uint> allowed);

    /// <summary>Moves past <paramref name="token"/>, which was allowed.</summary>
    void Advance(int token);

    /// <summary>
    /// Whether nothing but EOS may come next: the output is complete (or EOS already ended it). The
    /// constraint then wins over min_tokens (EOS is not masked), and the EOS it allows stops the
    /// sequence even under ignore_eos, since nothing could follow it.
    /// </summary>
    bool IsComplete => false;
}
