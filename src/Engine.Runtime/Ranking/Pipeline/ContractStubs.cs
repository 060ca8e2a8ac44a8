// TEMPORARY (h/rank only, never landed): the shape of CONTRACTS.md §3 so the ranking pipeline compiles
// before helper B's ITextEmbedder lands. Deleted when B's code is merged.

// Stub lives in Ranking: a namespace Engine.Runtime.Encoding hides System.Text.Encoding from Tokenization/*.cs (B's fix).
namespace Engine.Runtime.Ranking
{
    public interface ITextEmbedder
    {
        int Dimensions { get; }
        string ModelVersion { get; }
        void Embed(IReadOnlyList<string> texts, Span<float> output);
    }
}

