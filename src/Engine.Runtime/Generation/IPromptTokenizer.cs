namespace Engine.Runtime.Generation;

/// <summary>
/// What the <see cref="Generator"/> needs from a tokenizer: text to prompt ids (with the BOS token
/// when the model expects one) and ids back to text. Implemented over the GGUF tokenizer of
/// Engine.Runtime.Tokenization.
/// </summary>
public interface IPromptTokenizer
{
    /// <summary>The ids of a prompt, BOS included when the model's tokenizer adds one.</summary>
    int[] Encode(string text);

    /// <summary>The text of a run of ids (special tokens such as BOS contribute nothing).</summary>
    string Decode(ReadOnlySpan<int> ids);
}
