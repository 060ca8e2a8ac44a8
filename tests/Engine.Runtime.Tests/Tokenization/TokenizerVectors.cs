using System.Text;
using Engine.Core.Gguf;
using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>One case of llama.cpp's tokenizer test vectors: a text and the ids llama.cpp gives it
/// (no BOS, special tokens not parsed).</summary>
public sealed record TokenizerCase(int Index, string Text, int[] Ids);

/// <summary>
/// Reads ../shared/tokenizers/NAME.gguf.inp/.out the way llama.cpp's tests/test-tokenizer-0.cpp does,
/// and builds each vocabulary's tokenizer once per test run.
/// </summary>
public static class TokenizerVectors
{
    public const string LlamaSpm = "ggml-vocab-llama-spm.gguf";
    public const string Gpt2 = "ggml-vocab-gpt-2.gguf";
    public const string Stories260K = "stories260K.f32.gguf";

    private static readonly Lazy<GgufTokenizer> _llamaSpm = new(() => Load(SharedFixtures.PathOf("tokenizers", LlamaSpm)));
    private static readonly Lazy<GgufTokenizer> _gpt2 = new(() => Load(SharedFixtures.PathOf("tokenizers", Gpt2)));
    private static readonly Lazy<GgufTokenizer> _stories = new(() => Load(SharedFixtures.PathOf("models", Stories260K)));

    public static GgufTokenizer LlamaSpmTokenizer => _llamaSpm.Value;
    public static GgufTokenizer Gpt2Tokenizer => _gpt2.Value;
    public static GgufTokenizer Stories260KTokenizer => _stories.Value;

    public static GgufTokenizer Load(string path)
    {
        using var file = GgufFile.Open(path);
        return GgufTokenizer.Create(file.Metadata);
    }

    /// <summary>The cases of one vocabulary: inputs split on "\n__ggml_vocab_test__\n" (a separator at
    /// the very end opens no further case), outputs one stripped line each.</summary>
    public static IReadOnlyList<TokenizerCase> Cases(string vocabFile)
    {
        string raw = File.ReadAllText(SharedFixtures.PathOf("tokenizers", vocabFile + ".inp"), new UTF8Encoding(false));
        const string separator = "\n__ggml_vocab_test__\n";
        var inputs = new List<string>();
        for (int pos = 0; pos < raw.Length;)
        {
            int next = raw.IndexOf(separator, pos, StringComparison.Ordinal);
            if (next < 0) { inputs.Add(raw[pos..]); break; }
            inputs.Add(raw[pos..next]);
            pos = next + separator.Length;
        }

        string[] lines = File.ReadAllText(SharedFixtures.PathOf("tokenizers", vocabFile + ".out")).Split('\n');
        if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1]; // getline: no line after the last '\n'
        Assert.True(inputs.Count == lines.Length, $"{vocabFile}: {inputs.Count} inputs but {lines.Length} outputs");

        return [.. inputs.Select((text, i) => new TokenizerCase(i, text,
            [.. lines[i].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)]))];
    }

    /// <summary>A readable form of a string for failure messages (control characters escaped).</summary>
    public static string Show(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
        {
            if (c == '\n') sb.Append("\\n");
            else if (c == '\t') sb.Append("\\t");
            else if (char.IsControl(c)) sb.Append($"\\u{(int)c:X4}");
            else sb.Append(c);
        }
        return sb.Append('"').ToString();
    }
}
