using Engine.Core.Gguf;
using Engine.Runtime.Tokenization;

namespace Engine.Runtime.Tests.Tokenization;

/// <summary>The vocabularies <c>engine synth-model</c> writes (Engine.Core's SyntheticModel) load and round-trip.</summary>
public sealed class SyntheticModelVocabularyTests
{
    [Theory]
    [InlineData(32000)] // TinyLlama shape
    [InlineData(49152)] // SmolLM2 shape
    public void Synthetic_model_vocabulary_encodes_and_decodes_text(int size)
    {
        var (tokens, scores, types) = SyntheticModel.BuildVocabulary(size);
        var m = new GgufMetadata("synth.gguf");
        m.Set(GgufTokenizerKeys.Model, GgufValue.Of("llama"));
        m.Set(GgufTokenizerKeys.Tokens, GgufValue.Of(tokens));
        m.Set(GgufTokenizerKeys.Scores, GgufValue.Of(scores));
        m.Set(GgufTokenizerKeys.TokenType, GgufValue.Of(types));

        var t = GgufTokenizer.Create(m);
        Assert.Equal(size, t.VocabSize);
        const string text = "Once upon a time, the quick brown fox — naïve 🦊 — jumped 12 times.";
        int[] ids = t.Encode(text);
        Assert.Equal(t.BosId, ids[0]);
        Assert.All(ids, id => Assert.InRange(id, 0, size - 1));
        Assert.True(ids.Length < text.Length, "merges should shorten the text");
        Assert.Equal(text, t.Decode(ids.AsSpan(1))); // without BOS the first token's dummy-prefix space goes
    }
}
