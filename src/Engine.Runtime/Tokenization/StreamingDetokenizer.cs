using System.Text;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// Turns generated token ids into text as they arrive. A token may end in the middle of a UTF-8
/// character (byte-fallback tokens <c>&lt;0xE2&gt;&lt;0x80&gt;&lt;0x99&gt;</c>, or GPT-2 byte-level pieces):
/// those bytes are held until the character is complete, so every string returned is whole text.
/// One instance per generation; not thread-safe.
/// </summary>
public sealed class StreamingDetokenizer
{
    // Longest UTF-8 sequence; enough for one held-back character.
    private const int MaxUtf8Bytes = 4;

    private readonly GgufTokenizer _tokenizer;
    private readonly bool _renderSpecial;
    private readonly bool _removeLeadingSpace;
    // The decoder keeps the bytes of an unfinished character between calls.
    private readonly Decoder _decoder = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];
    private bool _first = true;

    internal StreamingDetokenizer(GgufTokenizer tokenizer, bool renderSpecial, bool removeLeadingSpace)
    {
        _tokenizer = tokenizer;
        _renderSpecial = renderSpecial;
        _removeLeadingSpace = removeLeadingSpace;
    }

    /// <summary>Appends one token; returns the text it completes (empty while a character is unfinished).</summary>
    public string Append(int id)
    {
        ReadOnlySpan<byte> piece = _tokenizer.GetPieceBytes(id, _renderSpecial);
        if (_first && _removeLeadingSpace && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
        _first = false;
        return Convert(piece, flush: false);
    }

    /// <summary>
    /// Appends one token and writes the text it completes into <paramref name="destination"/> without
    /// allocating; returns the number of chars written. <paramref name="destination"/> must hold at least
    /// <see cref="MaxCharsPerToken"/> chars.
    /// </summary>
    public int Append(int id, Span<char> destination)
    {
        ReadOnlySpan<byte> piece = _tokenizer.GetPieceBytes(id, _renderSpecial);
        if (_first && _removeLeadingSpace && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
        _first = false;
        if (destination.Length < _decoder.GetCharCount(piece, flush: false))
            throw new ArgumentException($"destination holds {destination.Length} chars; {nameof(MaxCharsPerToken)} = {MaxCharsPerToken}", nameof(destination));
        return _decoder.GetChars(piece, destination, flush: false);
    }

    /// <summary>The most chars one <see cref="Append(int, Span{char})"/> can write: the longest token's bytes
    /// plus a held-back character, each byte at most one char.</summary>
    public int MaxCharsPerToken => _tokenizer.MaxPieceBytes + MaxUtf8Bytes;

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush() => Convert(default, flush: true);

    /// <summary>Forgets held bytes and starts a new stream.</summary>
    public void Reset()
    {
        _decoder.Reset();
        _first = true;
    }

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        int needed = _decoder.GetCharCount(bytes, flush: false) + MaxUtf8Bytes;
        if (_chars.Length < needed) _chars = new char[Math.Max(needed, _chars.Length * 2)];
        int n = _decoder.GetChars(bytes, _chars, flush);
        return n == 0 ? string.Empty : new string(_chars, 0, n);
    }
}
