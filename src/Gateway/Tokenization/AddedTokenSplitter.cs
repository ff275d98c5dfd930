namespace Loom.Gateway.Tokenization;

/// <summary>Finds added tokens in text the way HF's AddedVocabulary does: leftmost-longest
/// non-overlapping matches, with single_word / lstrip / rstrip applied to each match.</summary>
internal sealed class AddedTokenSplitter
{
    // Candidates grouped by first char, longest first, so the first hit at a position is the
    // longest one (HF uses Aho-Corasick with LeftmostLongest; same result for a fixed position).
    private readonly Dictionary<char, HfAddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<HfAddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Splits <paramref name="text"/> into plain pieces (token null) and added tokens.
    /// Whitespace swallowed by lstrip/rstrip belongs to the token and is dropped from the text.</summary>
    public void Split(string text, int baseOffset, List<(string Text, HfAddedToken? Token, int Offset)> output)
    {
        int start = 0; // end of the previous split: text before it is already emitted
        int i = 0;
        while (i < text.Length)
        {
            HfAddedToken? hit = null;
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
            {
                foreach (var t in candidates)
                {
                    if (string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) == 0)
                    {
                        hit = t;
                        break;
                    }
                }
            }
            if (hit is null)
            {
                i++;
                continue;
            }
            int mStart = i;
            int mStop = i + hit.Content.Length;
            if (hit.SingleWord)
            {
                bool spaceBefore = mStart == 0 || !IsWordChar(text, mStart - 1, before: true);
                bool spaceAfter = mStop == text.Length || !IsWordChar(text, mStop, before: false);
                if (!spaceBefore || !spaceAfter)
                {
                    i++;
                    continue;
                }
            }
            if (hit.LStrip)
            {
                int s = mStart;
                while (s > start && char.IsWhiteSpace(text[s - 1]))
                {
                    s--;
                }
                mStart = s;
            }
            if (hit.RStrip)
            {
                while (mStop < text.Length && char.IsWhiteSpace(text[mStop]))
                {
                    mStop++;
                }
            }
            if (mStart > start)
            {
                output.Add((text[start..mStart], null, baseOffset + start));
            }
            output.Add((hit.Content, hit, baseOffset + mStart));
            start = i = mStop;
        }
        if (start < text.Length)
        {
            output.Add((text[start..], null, baseOffset + start));
        }
    }

    // HF's single_word test: a neighbouring alphanumeric or '_' makes the match part of a word.
    private static bool IsWordChar(string text, int index, bool before)
    {
        int cp;
        if (before && char.IsLowSurrogate(text[index]) && index > 0 && char.IsHighSurrogate(text[index - 1]))
        {
            cp = char.ConvertToUtf32(text[index - 1], text[index]);
        }
        else if (!before && char.IsHighSurrogate(text[index]) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1]))
        {
            cp = char.ConvertToUtf32(text[index], text[index + 1]);
        }
        else
        {
            cp = text[index];
        }
        if (cp == '_')
        {
            return true;
        }
        var cat = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is <= System.Globalization.UnicodeCategory.OtherLetter
            or System.Globalization.UnicodeCategory.DecimalDigitNumber
            or System.Globalization.UnicodeCategory.LetterNumber
            or System.Globalization.UnicodeCategory.OtherNumber;
    }
}
