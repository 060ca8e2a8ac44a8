using System.Text.RegularExpressions;
using Engine.Core.Gguf;
using Microsoft.ML.Tokenizers;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// The pre-tokenizer regular expressions llama.cpp uses for byte-level BPE vocabularies, chosen by
/// <c>tokenizer.ggml.pre</c> (llama.cpp src/llama-vocab.cpp, <c>llm_tokenizer_bpe</c>), and whether
/// detokenizing cleans spaces (<c>clean_spaces</c>) for that type.
/// </summary>
internal static class BpePreTokenizers
{
    // GPT-2's split: contractions, words, numbers, other symbols each with an optional leading space,
    // trailing whitespace. (llama.cpp's expression; its unmatched whitespace becomes its own piece.)
    private const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

    // Qwen2: case-insensitive contractions, a word with one leading non-letter, single digits.
    private const string Qwen2 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // Llama 3: like Qwen2 but numbers in groups of up to three digits.
    private const string Llama3 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>How llama.cpp treats one pre-tokenizer type.</summary>
    /// <param name="Patterns">Expressions applied in turn.</param>
    /// <param name="CleanSpaces">llama.cpp's clean_spaces when detokenizing.</param>
    /// <param name="IgnoreMerges">A pre-token that is itself in the vocabulary is emitted whole, without BPE
    /// (llama.cpp's ignore_merges, for Llama 3).</param>
    /// <param name="AddBos">The default of tokenizer.ggml.add_bos_token.</param>
    public readonly record struct Kind(string[] Patterns, bool CleanSpaces, bool IgnoreMerges = false, bool AddBos = false);

    /// <summary>The pre-tokenizer type named by <c>tokenizer.ggml.pre</c>.</summary>
    public static Kind For(string? pre, string file) => pre switch
    {
        "gpt-2" or "phi-2" or "mpt" or "olmo" or "jina-es" or "jina-de" or "jina-v2-es" or "jina-v2-de" or "gigachat"
            => new([Gpt2], CleanSpaces: true),
        // StarCoder family: every digit on its own, then GPT-2's split.
        "starcoder" or "refact" or "codeshell" or "exaone" or "minerva-7b" => new([@"\p{N}", Gpt2], CleanSpaces: true),
        "smollm" or "command-r" => new([@"\p{N}", Gpt2], CleanSpaces: false),
        "qwen2" or "deepseek-r1-qwen" => new([Qwen2], CleanSpaces: false),
        "llama3" or "llama-v3" or "llama-bpe" or "falcon3" => new([Llama3], CleanSpaces: true, IgnoreMerges: true, AddBos: true),
        _ => throw new GgufFormatException(file, GgufTokenizerKeys.Pre,
            $"pre-tokenizer '{pre ?? "(missing)"}' is not supported for tokenizer model 'gpt2' (supported: gpt-2, phi-2, mpt, " +
            "olmo, jina-es, jina-de, jina-v2-es, jina-v2-de, gigachat, starcoder, refact, codeshell, exaone, minerva-7b, smollm, " +
            "command-r, qwen2, deepseek-r1-qwen, llama3, llama-v3, llama-bpe, falcon3)"),
    };

    /// <summary>A Microsoft.ML.Tokenizers pre-tokenizer that applies the expressions in turn.</summary>
    public static PreTokenizer Create(string[] patterns) =>
        new SequentialRegexPreTokenizer([.. patterns.Select(p => new Regex(p, RegexOptions.Compiled | RegexOptions.CultureInvariant))]);

    /// <summary>
    /// llama.cpp's <c>unicode_regex_split</c>: each expression splits every piece left by the previous one
    /// into its matches and the text between them (which is kept, not dropped — unlike a plain
    /// <see cref="RegexPreTokenizer"/>, which yields only the matches).
    /// </summary>
    private sealed class SequentialRegexPreTokenizer(Regex[] regexes) : PreTokenizer
    {
        public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
            string.IsNullOrEmpty(text) ? [] : Split(text);

        public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
            text.IsEmpty ? [] : Split(text.ToString());

        private List<(int Offset, int Length)> Split(string text)
        {
            var pieces = new List<(int Offset, int Length)> { (0, text.Length) };
            var next = new List<(int Offset, int Length)>();
            foreach (var regex in regexes)
            {
                next.Clear();
                foreach (var (offset, length) in pieces)
                {
                    int at = offset, end = offset + length;
                    for (Match m = regex.Match(text, offset, length); m.Success; m = m.NextMatch())
                    {
                        if (m.Length == 0) continue;
                        if (m.Index > at) next.Add((at, m.Index - at));
                        next.Add((m.Index, m.Length));
                        at = m.Index + m.Length;
                    }
                    if (at < end) next.Add((at, end - at));
                }
                (pieces, next) = (next, pieces);
            }
            return pieces;
        }
    }
}
