namespace Engine.Runtime.Tokenization;

/// <summary>
/// The GGUF metadata keys a tokenizer is built from (names as in llama.cpp's <c>LLM_KV_TOKENIZER_*</c>,
/// including its historical spelling <c>seperator_token_id</c>).
/// </summary>
public static class GgufTokenizerKeys
{
    /// <summary>Tokenizer model: <c>llama</c> (SentencePiece) or <c>gpt2</c> (byte-level BPE). Required.</summary>
    public const string Model = "tokenizer.ggml.model";
    /// <summary>Pre-tokenizer type of a <c>gpt2</c> vocabulary (<c>gpt-2</c>, <c>smollm</c>, <c>qwen2</c>, <c>llama-bpe</c>, …).</summary>
    public const string Pre = "tokenizer.ggml.pre";
    /// <summary>Token texts by id (array of string). Required.</summary>
    public const string Tokens = "tokenizer.ggml.tokens";
    /// <summary>Per-token scores (array of float32, one per token); SentencePiece merge priority.</summary>
    public const string Scores = "tokenizer.ggml.scores";
    /// <summary>Per-token <see cref="GgufTokenType"/> (array of int32, one per token).</summary>
    public const string TokenType = "tokenizer.ggml.token_type";
    /// <summary>BPE merges in rank order, "left right" (array of string). Required for <c>gpt2</c>.</summary>
    public const string Merges = "tokenizer.ggml.merges";
    /// <summary>Beginning-of-sequence token id.</summary>
    public const string BosId = "tokenizer.ggml.bos_token_id";
    /// <summary>End-of-sequence token id.</summary>
    public const string EosId = "tokenizer.ggml.eos_token_id";
    /// <summary>Unknown token id.</summary>
    public const string UnknownId = "tokenizer.ggml.unknown_token_id";
    /// <summary>End-of-turn token id.</summary>
    public const string EotId = "tokenizer.ggml.eot_token_id";
    /// <summary>End-of-message token id.</summary>
    public const string EomId = "tokenizer.ggml.eom_token_id";
    /// <summary>Separator token id (llama.cpp's spelling).</summary>
    public const string SeparatorId = "tokenizer.ggml.seperator_token_id";
    /// <summary>Padding token id.</summary>
    public const string PaddingId = "tokenizer.ggml.padding_token_id";
    /// <summary>Whether encoding adds BOS (bool).</summary>
    public const string AddBos = "tokenizer.ggml.add_bos_token";
    /// <summary>Whether encoding adds EOS (bool).</summary>
    public const string AddEos = "tokenizer.ggml.add_eos_token";
    /// <summary>Whether SentencePiece puts a space before the text (bool, default true).</summary>
    public const string AddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    /// <summary>SentencePiece whitespace collapsing (bool); llama.cpp does not apply it to <c>llama</c> vocabularies.</summary>
    public const string RemoveExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces";
}
