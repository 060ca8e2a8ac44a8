namespace Engine.Runtime.Generation;

/// <summary>
/// Turns a growing id sequence into text pieces as they become printable. Decoding ids one by one
/// would break UTF-8 characters split over byte tokens and lose SentencePiece's leading spaces, so
/// each step decodes a short window twice, with and without the new ids, and emits the difference
/// (the prefix/read offsets of Hugging Face's text-generation-inference). A piece ending in U+FFFD
/// (an incomplete character) is held until the next token completes it.
/// </summary>
internal sealed class IncrementalDetokenizer
{
    private const char Replacement = '\uFFFD';
    private readonly IPromptTokenizer _tokenizer;
    private int _prefixOffset; // start of the window: ids before it are printed and no longer decoded
    private int _readOffset;   // ids before it are printed

    /// <summary>Starts after <paramref name="promptLength"/> ids (the prompt), keeping its last id as context.</summary>
    public IncrementalDetokenizer(IPromptTokenizer tokenizer, int promptLength)
    {
        _tokenizer = tokenizer;
        _readOffset = promptLength;
        _prefixOffset = Math.Max(0, promptLength - 1);
    }

    /// <summary>The new printable text now that <paramref name="ids"/> (prompt and generated) has grown.</summary>
    public string Next(ReadOnlySpan<int> ids)
    {
        string prefix = _tokenizer.Decode(ids[_prefixOffset.._readOffset]);
        string full = _tokenizer.Decode(ids[_prefixOffset..]);
        if (full.Length > prefix.Length && full[^1] != Replacement && full.StartsWith(prefix, StringComparison.Ordinal))
        {
            _prefixOffset = _readOffset;
            _readOffset = ids.Length;
            return full[prefix.Length..];
        }
        return "";
    }

    /// <summary>Whatever is still held (an incomplete character at the end), decoded as is.</summary>
    public string Flush(ReadOnlySpan<int> ids)
    {
        if (_readOffset >= ids.Length) return "";
        string prefix = _tokenizer.Decode(ids[_prefixOffset.._readOffset]);
        string full = _tokenizer.Decode(ids[_prefixOffset..]);
        _prefixOffset = _readOffset = ids.Length;
        return full.Length > prefix.Length && full.StartsWith(prefix, StringComparison.Ordinal) ? full[prefix.Length..] : "";
    }
}
