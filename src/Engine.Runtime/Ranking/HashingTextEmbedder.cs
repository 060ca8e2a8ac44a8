using Engine.Runtime.Encoding;

namespace Engine.Runtime.Ranking;

/// <summary>
/// A lexical stand-in for a sentence encoder: each word (lower case, singular) adds ±1 to two dimensions picked by a
/// hash, then the row is L2-normalized, so texts sharing words have a positive cosine and others about zero. No
/// meaning beyond shared words ("sneakers" is not near "shoes"): for tests and offline runs without the MiniLM model.
/// </summary>
public sealed class HashingTextEmbedder : ITextEmbedder
{
    private static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
        { "a", "an", "the", "and", "or", "in", "on", "for", "with", "of", "by", "to", "is", "it", "my", "me", "i", "some", "from", "at" };

    /// <summary>Creates an embedder of <paramref name="dimensions"/> outputs (384 matches MiniLM).</summary>
    public HashingTextEmbedder(int dimensions = 384)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 8);
        Dimensions = dimensions;
    }

    public int Dimensions { get; }

    public string ModelVersion => $"hashing-bow-1/{Dimensions}";

    /// <summary>Embeds texts into output [texts.Count, Dimensions], rows L2-normalized (a text with no words gets e0).</summary>
    public void Embed(IReadOnlyList<string> texts, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (output.Length < texts.Count * Dimensions)
            throw new ArgumentException($"output needs {texts.Count} × {Dimensions} floats", nameof(output));
        for (int t = 0; t < texts.Count; t++)
        {
            var row = output.Slice(t * Dimensions, Dimensions);
            row.Clear();
            foreach (var word in CategoryVocabulary.Words(texts[t] ?? ""))
            {
                if (StopWords.Contains(word)) continue;
                uint h = Fnv1a(word);
                row[(int)(h % (uint)Dimensions)] += (h & 0x8000_0000) != 0 ? 1 : -1;
                uint h2 = h * 0x9E3779B1u;
                row[(int)(h2 % (uint)Dimensions)] += (h2 & 0x8000_0000) != 0 ? 0.5f : -0.5f;
            }
            float norm = 0;
            foreach (float x in row) norm += x * x;
            if (norm == 0) row[0] = 1;
            else
            {
                float inv = 1 / MathF.Sqrt(norm);
                for (int i = 0; i < row.Length; i++) row[i] *= inv;
            }
        }
    }

    private static uint Fnv1a(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return h;
    }
}
