using System.Globalization;
using System.Text.RegularExpressions;

namespace Loom.Gateway.Tokenization;

/// <summary>Runs a pre-tokenizer regex with Unicode semantics over the whole code point range.
/// .NET regex works on UTF-16 units, so \p{L} / \p{N} never match a surrogate pair (𝟏, 𠀀), while
/// HF's Oniguruma does. Each non-BMP character is therefore replaced by one BMP stand-in of the
/// same general category, the regex runs on that, and match offsets are mapped back.</summary>
internal static class UnicodeRegexSplitter
{
    // One BMP character per UnicodeCategory (enum order). None of them is a letter that a
    // pattern spells out literally (the contractions 's 't 're 've 'm 'll 'd), nor whitespace.
    private static readonly char[] StandIn =
    [
        'Ж', // UppercaseLetter
        'ж', // LowercaseLetter
        'ǅ', // TitlecaseLetter
        'ʰ', // ModifierLetter
        'א', // OtherLetter
        '\u0300', // NonSpacingMark
        '\u0903', // SpacingCombiningMark
        '\u20DD', // EnclosingMark
        '\u0663', // DecimalDigitNumber
        'Ⅰ', // LetterNumber
        '²', // OtherNumber
        '\u3000', // SpaceSeparator (no non-BMP ones exist; kept for completeness)
        '\u2028', // LineSeparator
        '\u2029', // ParagraphSeparator
        '\u0007', // Control
        '\u200B', // Format
        '\uD800', // Surrogate (never produced for a valid pair)
        '\uE000', // PrivateUse
        '‿', // ConnectorPunctuation
        '‐', // DashPunctuation
        '⁅', // OpenPunctuation
        '⁆', // ClosePunctuation
        '‹', // InitialQuotePunctuation
        '›', // FinalQuotePunctuation
        '‼', // OtherPunctuation
        '∑', // MathSymbol
        '€', // CurrencySymbol
        '˟', // ModifierSymbol
        '☺', // OtherSymbol
        '\u0378', // OtherNotAssigned
    ];

    /// <summary>Appends (start, length) of each match, in original UTF-16 offsets.</summary>
    public static void Matches(Regex regex, string text, List<(int Start, int Length)> output)
    {
        int firstPair = -1;
        for (int i = 0; i + 1 < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && char.IsLowSurrogate(text[i + 1]))
            {
                firstPair = i;
                break;
            }
        }
        if (firstPair < 0)
        {
            for (var m = regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Length > 0)
                {
                    output.Add((m.Index, m.Length));
                }
            }
            return;
        }

        // origIndex[k] = offset in text of mapped char k; origIndex[mapped.Length] = text.Length.
        var mapped = new char[text.Length];
        var origIndex = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            origIndex[n] = i;
            if (i + 1 < text.Length && char.IsHighSurrogate(text[i]) && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32(text[i], text[i + 1]);
                mapped[n++] = StandIn[(int)CharUnicodeInfo.GetUnicodeCategory(cp)];
                i++;
            }
            else
            {
                mapped[n++] = text[i];
            }
        }
        origIndex[n] = text.Length;
        string s = new(mapped, 0, n);
        for (var m = regex.Match(s); m.Success; m = m.NextMatch())
        {
            if (m.Length > 0)
            {
                int start = origIndex[m.Index];
                output.Add((start, origIndex[m.Index + m.Length] - start));
            }
        }
    }
}
