namespace Loom.Gateway.Tokenization;

/// <summary>Finds stop strings in streamed text that arrives in arbitrary pieces (one token's
/// text at a time). Text that could be the start of a stop string is held back until it either
/// completes one or cannot; a matched stop string is cut from the output (kept with
/// include_stop_str_in_output), and nothing after it is ever emitted.</summary>
public sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private readonly bool _includeStop;
    private string _held = "";

    public StopStringMatcher(IEnumerable<string> stopStrings, bool includeStopStringInOutput = false)
    {
        ArgumentNullException.ThrowIfNull(stopStrings);
        _stops = stopStrings.Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
        _includeStop = includeStopStringInOutput;
    }

    public bool Stopped { get; private set; }

    /// <summary>The stop string that fired, or null.</summary>
    public string? MatchedStop { get; private set; }

    public DetokenizedDelta Push(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Stopped)
        {
            return new DetokenizedDelta("", true);
        }
        if (_stops.Length == 0)
        {
            return new DetokenizedDelta(text, false);
        }
        string buffer = _held + text;

        // Earliest match wins (ties: longest), so no text past the first stop leaks out. The held
        // part never contains a whole stop string, so searching the whole buffer finds new ones only.
        int best = -1;
        string? bestStop = null;
        foreach (string stop in _stops)
        {
            int at = buffer.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best || (at == best && stop.Length > bestStop!.Length)))
            {
                best = at;
                bestStop = stop;
            }
        }
        if (bestStop is not null)
        {
            Stopped = true;
            MatchedStop = bestStop;
            _held = "";
            return new DetokenizedDelta(buffer[..(best + (_includeStop ? bestStop.Length : 0))], true);
        }

        int hold = LongestStopPrefixSuffix(buffer);
        // Never hold back half of a surrogate pair on the emitted side.
        int cut = buffer.Length - hold;
        if (cut > 0 && char.IsHighSurrogate(buffer[cut - 1]))
        {
            cut--;
        }
        _held = buffer[cut..];
        return new DetokenizedDelta(buffer[..cut], false);
    }

    /// <summary>End of generation without a stop: release whatever was held back.</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _held;
        _held = "";
        return rest;
    }

    // Length of the longest suffix of buffer that is a proper prefix of some stop string.
    private int LongestStopPrefixSuffix(string buffer)
    {
        int best = 0;
        foreach (string stop in _stops)
        {
            for (int len = Math.Min(stop.Length - 1, buffer.Length); len > best; len--)
            {
                if (string.CompareOrdinal(buffer, buffer.Length - len, stop, 0, len) == 0)
                {
                    best = len;
                    break;
                }
            }
        }
        return best;
    }
}
