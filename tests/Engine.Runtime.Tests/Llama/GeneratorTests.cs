using Engine.Runtime.Generation;
using Engine.Runtime.Llama;
using Engine.Runtime.Sampling;
using Engine.Runtime.Tokenization;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests.Llama;

public sealed class GeneratorTests
{
    private static (LlamaModel Model, LlamaDecoder Decoder) Open(Engine.Core.Backend.IComputeBackend backend, int ctx = 256, string file = Stories260KReference.F32File)
    {
        var model = LlamaModel.Load(SharedFixtures.PathOf("models", file), backend);
        return (model, model.CreateDecoder(new LlamaDecoderOptions { ContextLength = ctx }));
    }

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void Greedy_generation_streams_llama_cpp_ids(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        var (model, decoder) = Open(backend);
        using var _ = model;
        using var __ = decoder;
        var streamed = new List<int>();
        var result = new Generator(decoder).Generate(Stories260KReference.PromptIds,
            new GenerationOptions { MaxTokens = 200, Sampling = SamplingOptions.Greedy }, t => streamed.Add(t.Id));
        Assert.Equal(Stories260KReference.F32Ids, result.TokenIds);
        Assert.Equal(result.TokenIds, streamed);
        Assert.Equal(FinishReason.MaxTokens, result.FinishReason);
        Assert.Equal(199, result.DecodeSteps);
        Assert.Equal(Stories260KReference.PromptIds, result.PromptIds);
    }

    [RequiresSharedFact]
    public void Same_seed_gives_the_same_tokens()
    {
        using var backend = TestBackends.Create("reference");
        var (model, decoder) = Open(backend);
        using var _ = model;
        using var __ = decoder;
        var g = new Generator(decoder);
        var options = new GenerationOptions { MaxTokens = 30, Sampling = new SamplingOptions { Temperature = 1.0f, Seed = 1234 } };
        var a = g.Generate(Stories260KReference.PromptIds, options);
        var b = g.Generate(Stories260KReference.PromptIds, options);
        var c = g.Generate(Stories260KReference.PromptIds, options with { Sampling = options.Sampling with { Seed = 99 } });
        Assert.Equal(a.TokenIds, b.TokenIds);
        Assert.Equal(1234UL, a.Seed);
        Assert.NotEqual(a.TokenIds, c.TokenIds);
    }

    [RequiresSharedFact]
    public void A_prompt_that_leaves_no_room_is_rejected()
    {
        using var backend = TestBackends.Create("reference");
        var (model, decoder) = Open(backend, ctx: 5);
        using var _ = model;
        using var __ = decoder;
        var e = Assert.Throws<PromptTooLongException>(() =>
            new Generator(decoder).Generate(Stories260KReference.PromptIds, new GenerationOptions { Sampling = SamplingOptions.Greedy }));
        Assert.Equal(5, e.PromptTokens);
        Assert.Contains("context of 5", e.Message);
    }

    [RequiresSharedFact]
    public void Generation_stops_when_the_context_is_full()
    {
        using var backend = TestBackends.Create("reference");
        var (model, decoder) = Open(backend, ctx: 12);
        using var _ = model;
        using var __ = decoder;
        var result = new Generator(decoder).Generate(Stories260KReference.PromptIds, new GenerationOptions { MaxTokens = -1, Sampling = SamplingOptions.Greedy });
        Assert.Equal(FinishReason.ContextFull, result.FinishReason);
        Assert.Equal(Stories260KReference.F32Ids[..7], result.TokenIds);
    }

    [RequiresSharedTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void Text_prompt_streams_llama_cpp_text(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        var (model, decoder) = Open(backend);
        using var _ = model;
        using var __ = decoder;
        var generator = new Generator(decoder, GgufTokenizer.Create(model.File.Metadata));
        var pieces = new List<string>();
        var result = generator.Generate("Once upon a time", new GenerationOptions { MaxTokens = 200, Sampling = SamplingOptions.Greedy }, t => pieces.Add(t.Text));
        Assert.Equal(Stories260KReference.PromptIds, result.PromptIds);
        Assert.Equal(Stories260KReference.F32Ids, result.TokenIds);
        // REFERENCE.md's text is of llama.cpp's whole 251-token run: ours, of 200 tokens, is its beginning.
        Assert.True(result.Text.Length > 450, $"200 tokens made only {result.Text.Length} characters");
        Assert.StartsWith(result.Text, Stories260KReference.F32Completion(), StringComparison.Ordinal);
        Assert.Equal(result.Text, string.Concat(pieces));
    }

    [RequiresSharedFact]
    public void A_stop_sequence_ends_the_text_before_it()
    {
        using var backend = TestBackends.Create("cpu");
        var (model, decoder) = Open(backend);
        using var _ = model;
        using var __ = decoder;
        var pieces = new List<string>();
        var generator = new Generator(decoder, GgufTokenizer.Create(model.File.Metadata));
        string full = Stories260KReference.F32Completion();
        var result = generator.Generate(Stories260KReference.PromptIds,
            new GenerationOptions { MaxTokens = 100, Sampling = SamplingOptions.Greedy, StopSequences = ["never", "Lily."] }, t => pieces.Add(t.Text));
        Assert.Equal(FinishReason.StopSequence, result.FinishReason);
        Assert.Equal(full[..full.IndexOf("Lily.", StringComparison.Ordinal)], result.Text);
        Assert.Equal(result.Text, string.Concat(pieces));
        Assert.True(result.TokenIds.Length < 20, "stopped at the first 'Lily.'");
    }

    [RequiresSharedFact]
    public void End_of_generation_token_stops_unless_ignored()
    {
        using var backend = TestBackends.Create("reference");
        var (model, decoder) = Open(backend);
        using var _ = model;
        using var __ = decoder;
        // Force EOS (id 2) with a logit bias: the run ends at once with EOS as its only token.
        var forceEos = new SamplingOptions { Temperature = 0, LogitBias = new Dictionary<int, float> { [2] = 1000 } };
        var g = new Generator(decoder, GgufTokenizer.Create(model.File.Metadata));
        var stopped = g.Generate(Stories260KReference.PromptIds, new GenerationOptions { MaxTokens = 10, Sampling = forceEos });
        Assert.Equal(FinishReason.EndOfGeneration, stopped.FinishReason);
        Assert.Equal([2], stopped.TokenIds);
        Assert.Equal("", stopped.Text);

        var ignored = g.Generate(Stories260KReference.PromptIds, new GenerationOptions { MaxTokens = 3, Sampling = forceEos, StopAtEndOfGeneration = false });
        Assert.Equal(FinishReason.MaxTokens, ignored.FinishReason);
        Assert.Equal([2, 2, 2], ignored.TokenIds);
    }

    [Fact]
    public void Stop_matcher_holds_back_a_possible_stop_prefix_and_releases_it_when_it_is_not_one()
    {
        var m = new StopSequenceMatcher(["END"]);
        Assert.Equal("abc ", m.Append("abc E"));
        Assert.Equal("", m.Append("N"));
        Assert.Equal("ENx", m.Append("x"));
        Assert.Equal("", m.Append("E"));
        Assert.Equal("E", m.Flush());
        Assert.False(m.Stopped);

        var s = new StopSequenceMatcher(["END", "\n\n"]);
        Assert.Equal("one", s.Append("one"));
        Assert.Equal(" two", s.Append(" twoE"));
        Assert.Equal("", s.Append("ND and more"));
        Assert.True(s.Stopped);
        Assert.Equal("one two", s.Emitted);
        Assert.Equal("", s.Append("ignored"));
    }
}
