namespace Engine.Runtime.Tokenization;

/// <summary>
/// The kind of a vocabulary entry, as stored in <c>tokenizer.ggml.token_type</c> (llama.cpp's
/// <c>llama_token_type</c>; the values 1..6 are also SentencePiece's <c>SentencePiece.Type</c>).
/// Persisted in GGUF files: values are fixed.
/// </summary>
public enum GgufTokenType
{
    /// <summary>No type recorded (0): decodes to nothing.</summary>
    Undefined = 0,
    /// <summary>An ordinary piece of text.</summary>
    Normal = 1,
    /// <summary>The unknown token (e.g. <c>&lt;unk&gt;</c>).</summary>
    Unknown = 2,
    /// <summary>A control token (BOS, EOS, chat markers): never produced from plain text.</summary>
    Control = 3,
    /// <summary>A user-defined piece: always matched as a whole in the input text.</summary>
    UserDefined = 4,
    /// <summary>An unused slot.</summary>
    Unused = 5,
    /// <summary>A byte-fallback token <c>&lt;0xXX&gt;</c> standing for one raw byte.</summary>
    Byte = 6,
}
