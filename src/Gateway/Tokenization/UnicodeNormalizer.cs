namespace Loom.Gateway.Tokenization;

/// <summary>Placeholder until table-driven NFC lands.</summary>
internal static class UnicodeNormalizer
{
    public static string Nfc(string s) => s.Normalize(System.Text.NormalizationForm.FormC);

    public static string Nfd(string s) => s.Normalize(System.Text.NormalizationForm.FormD);
}
