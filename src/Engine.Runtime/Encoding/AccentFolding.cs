namespace Engine.Runtime.Encoding;

/// <summary>
/// Strips accents from Latin letters, as BERT uncased's basic tokenizer does (NFD, then drop the non-spacing marks).
/// This service runs with invariant globalization (Directory.Build.props), where <c>string.Normalize</c> leaves
/// text as it is, so Microsoft.ML.Tokenizers' <c>RemoveNonSpacingMarks</c> cannot do it; this class does for the
/// Latin-1 Supplement, Latin Extended-A/B and Latin Extended Additional blocks (é → e, ñ → n, ẞ stays), and drops
/// combining marks (category Mn) already in the text. Letters elsewhere keep their accents (usually [UNK] in the
/// vocabulary, as before). The tables are each code point's first character after canonical decomposition when
/// the rest is non-spacing marks, else the code point itself (Unicode 14 data, Python's unicodedata).
/// </summary>
public static class AccentFolding
{
    private const int Latin1First = 0xC0;      // through U+024F
    private const int AdditionalFirst = 0x1E00; // through U+1EFF

    // [U+00C0, U+0250): folded character of each code point
    private const string Latin =
        "AAAAAA\u00C6CEEEEIIII\u00D0NOOOOO\u00D7\u00D8UUUUY\u00DE\u00DF" +
        "aaaaaa\u00E6ceeeeiiii\u00F0nooooo\u00F7\u00F8uuuuy\u00FEy" +
        "AaAaAaCcCcCcCcDd\u0110\u0111EeEeEeEeEeGgGg" +
        "GgGgHh\u0126\u0127IiIiIiIiI\u0131\u0132\u0133JjKk\u0138LlLlLl\u013F" +
        "\u0140\u0141\u0142NnNnNn\u0149\u014A\u014BOoOoOo\u0152\u0153RrRrRrSsSsSs" +
        "SsTtTt\u0166\u0167UuUuUuUuUuUuWwYyYZzZzZz\u017F" +
        "\u0180\u0181\u0182\u0183\u0184\u0185\u0186\u0187\u0188\u0189\u018A\u018B\u018C\u018D\u018E\u018F\u0190\u0191\u0192\u0193\u0194\u0195\u0196\u0197\u0198\u0199\u019A\u019B\u019C\u019D\u019E\u019F" +
        "Oo\u01A2\u01A3\u01A4\u01A5\u01A6\u01A7\u01A8\u01A9\u01AA\u01AB\u01AC\u01AD\u01AEUu\u01B1\u01B2\u01B3\u01B4\u01B5\u01B6\u01B7\u01B8\u01B9\u01BA\u01BB\u01BC\u01BD\u01BE\u01BF" +
        "\u01C0\u01C1\u01C2\u01C3\u01C4\u01C5\u01C6\u01C7\u01C8\u01C9\u01CA\u01CB\u01CCAaIiOoUuUuUuUuUu\u01DDAa" +
        "Aa\u00C6\u00E6\u01E4\u01E5GgKkOoOo\u01B7\u0292j\u01F1\u01F2\u01F3Gg\u01F6\u01F7NnAa\u00C6\u00E6\u00D8\u00F8" +
        "AaAaEeEeIiIiOoOoRrRrUuUuSsTt\u021C\u021DHh" +
        "\u0220\u0221\u0222\u0223\u0224\u0225AaEeOoOoOoOoYy\u0234\u0235\u0236\u0237\u0238\u0239\u023A\u023B\u023C\u023D\u023E\u023F" +
        "\u0240\u0241\u0242\u0243\u0244\u0245\u0246\u0247\u0248\u0249\u024A\u024B\u024C\u024D\u024E\u024F";

    // [U+1E00, U+1F00)
    private const string Additional =
        "AaBbBbBbCcDdDdDdDdDdEeEeEeEeEeFf" +
        "GgHhHhHhHhHhIiIiKkKkKkLlLlLlLlMm" +
        "MmMmNnNnNnNnOoOoOoOoPpPpRrRrRrRr" +
        "SsSsSsSsSsTtTtTtTtUuUuUuUuUuVvVv" +
        "WwWwWwWwWwXxXxYyZzZzZzhtwy\u1E9A\u017F\u1E9C\u1E9D\u1E9E\u1E9F" +
        "AaAaAaAaAaAaAaAaAaAaAaAaEeEeEeEe" +
        "EeEeEeEeIiIiOoOoOoOoOoOoOoOoOoOo" +
        "OoOoUuUuUuUuUuUuUuYyYyYyYy\u1EFA\u1EFB\u1EFC\u1EFD\u1EFE\u1EFF";

    /// <summary>The text with accents folded and combining marks removed; the same instance when nothing changes.</summary>
    public static string Fold(string text)
    {
        int i = 0;
        while (i < text.Length && !Changes(text[i])) i++;
        if (i == text.Length) return text;
        var sb = new System.Text.StringBuilder(text.Length);
        sb.Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.NonSpacingMark) continue;
            sb.Append(Map(c));
        }
        return sb.ToString();
    }

    private static bool Changes(char c) =>
        c >= Latin1First && (Map(c) != c || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.NonSpacingMark);

    private static char Map(char c) => c switch
    {
        >= (char)Latin1First and < (char)(Latin1First + 0x190) => Latin[c - Latin1First],
        >= (char)AdditionalFirst and < (char)(AdditionalFirst + 0x100) => Additional[c - AdditionalFirst],
        _ => c,
    };
}
