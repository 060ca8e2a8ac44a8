namespace Engine.Runtime.Tokenization;

/// <summary>
/// GPT-2's byte-to-character alphabet (OpenAI's <c>bytes_to_unicode</c>): every byte maps to a printable
/// character, so byte-level BPE vocabularies can be written as text. Bytes '!'..'~', '¡'..'¬' and '®'..'ÿ'
/// stand for themselves; the other 68 bytes map, in order, to U+0100 onwards (space becomes 'Ġ' U+0120).
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildAlphabet(); // [256]
    private static readonly int[] CharToByte = BuildInverse(ByteToChar); // indexed by char code, -1 when not in the alphabet

    /// <summary>The character standing for a byte.</summary>
    public static char CharOf(byte b) => ByteToChar[b];

    /// <summary>The byte a character of the alphabet stands for, or -1.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;

    private static char[] BuildAlphabet()
    {
        var alphabet = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            alphabet[b] = (char)(printable ? b : next++);
        }
        return alphabet;
    }

    private static int[] BuildInverse(char[] alphabet)
    {
        var inverse = new int[512];
        Array.Fill(inverse, -1);
        for (int b = 0; b < 256; b++) inverse[alphabet[b]] = b;
        return inverse;
    }
}
