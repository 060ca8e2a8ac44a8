using Engine.Runtime.Sampling;

namespace Engine.Runtime.Tests.Sampling;

public sealed class SamplerTests
{
    private const int Vocab = 1000;

    /// <summary>Fresh random logits in [-5, 5) (never a constant row), from a seeded generator.</summary>
    private static float[] RandomLogits(int seed, int vocab = Vocab)
    {
        var rng = new Random(seed);
        var l = new float[vocab];
        for (int i = 0; i < l.Length; i++) l[i] = (float)(rng.NextDouble() * 10 - 5);
        return l;
    }

    private static int ArgMax(ReadOnlySpan<float> l)
    {
        int best = 0;
        for (int i = 1; i < l.Length; i++) if (l[i] > l[best]) best = i;
        return best;
    }

    private static int[] Draw(Sampler s, float[] logits, int count)
    {
        var ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = s.Sample(logits, default);
        return ids;
    }

    [Fact]
    public void Xoshiro256StarStar_matches_the_reference_output_for_state_1_2_3_4()
    {
        // First outputs of the authors' xoshiro256starstar.c from s = {1, 2, 3, 4}.
        var rng = new Xoshiro256StarStar(1, 2, 3, 4);
        Assert.Equal(11520UL, rng.NextUInt64());
        Assert.Equal(0UL, rng.NextUInt64());
        Assert.Equal(1509978240UL, rng.NextUInt64());
        Assert.Equal(1215971899390074240UL, rng.NextUInt64());
    }

    [Fact]
    public void Same_seed_gives_the_same_tokens_and_another_seed_differs()
    {
        var logits = RandomLogits(1);
        var options = new SamplingOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = 42 };
        var a = Draw(new Sampler(Vocab, options), logits, 200);
        var b = Draw(new Sampler(Vocab, options), logits, 200);
        var c = Draw(new Sampler(Vocab, options with { Seed = 43 }), logits, 200);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.True(a.Distinct().Count() > 20, "a hot temperature over random logits should spread its draws");
    }

    [Fact]
    public void Reset_restarts_the_random_stream()
    {
        var logits = RandomLogits(2);
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 2, TopK = 0, TopP = 1, MinP = 0, Seed = 7 });
        var first = Draw(s, logits, 50);
        s.Reset();
        Assert.Equal(first, Draw(s, logits, 50));
    }

    [Fact]
    public void Temperature_zero_is_greedy_and_picks_the_first_maximum()
    {
        var logits = RandomLogits(3);
        var s = new Sampler(Vocab, SamplingOptions.Greedy);
        Assert.Equal(ArgMax(logits), s.Sample(logits, default));

        logits[10] = 100; logits[20] = 100; // a tie: llama.cpp's greedy keeps the first
        Assert.Equal(10, s.Sample(logits, default));
    }

    [Theory]
    [InlineData(0.7f)]
    [InlineData(5f)]
    public void Top_k_1_equals_greedy_at_any_temperature(float temperature)
    {
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = temperature, TopK = 1, Seed = 1 });
        for (int seed = 0; seed < 20; seed++)
        {
            var logits = RandomLogits(100 + seed);
            Assert.Equal(ArgMax(logits), s.Sample(logits, default));
        }
    }

    [Fact]
    public void Top_k_draws_only_among_the_k_best()
    {
        var logits = RandomLogits(4);
        var best5 = Enumerable.Range(0, Vocab).OrderByDescending(i => logits[i]).Take(5).ToHashSet();
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 10, TopK = 5, TopP = 1, MinP = 0, Seed = 3 });
        var drawn = Draw(s, logits, 300).ToHashSet();
        Assert.Subset(best5, drawn);
        Assert.Equal(5, drawn.Count); // at temperature 10 all five appear in 300 draws
    }

    [Fact]
    public void Min_p_excludes_tokens_below_the_fraction_of_the_best_probability()
    {
        // Probabilities ∝ exp(logit): token 0 is the best; tokens 1 and 2 are at 0.5 and 0.2 of it, the rest far below.
        var logits = new float[Vocab];
        Array.Fill(logits, -20f);
        logits[0] = 0;
        logits[1] = MathF.Log(0.5f);
        logits[2] = MathF.Log(0.2f);
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0.3f, Seed = 5 });
        var drawn = Draw(s, logits, 400).ToHashSet();
        Assert.Equal(new HashSet<int> { 0, 1 }, drawn);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p()
    {
        // Probabilities 0.5, 0.3, 0.15, 0.05 (the rest ~0): p = 0.75 needs the first two, not the third.
        var logits = new float[Vocab];
        Array.Fill(logits, -50f);
        logits[7] = MathF.Log(0.5f);
        logits[3] = MathF.Log(0.3f);
        logits[9] = MathF.Log(0.15f);
        logits[1] = MathF.Log(0.05f);
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 1, TopK = 0, TopP = 0.75f, MinP = 0, Seed = 9 });
        var drawn = Draw(s, logits, 400).ToHashSet();
        Assert.Equal(new HashSet<int> { 7, 3 }, drawn);

        var s2 = new Sampler(Vocab, new SamplingOptions { Temperature = 1, TopK = 0, TopP = 0.85f, MinP = 0, Seed = 9 });
        Assert.Equal(new HashSet<int> { 7, 3, 9 }, Draw(s2, logits, 600).ToHashSet());
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_of_recent_tokens()
    {
        // Token 1 leads token 2 by a little (positive logits); penalizing 1 must hand greedy to 2.
        var logits = new float[Vocab];
        Array.Fill(logits, -10f);
        logits[1] = 3.0f;
        logits[2] = 2.5f;
        var penalized = new Sampler(Vocab, new SamplingOptions { Temperature = 0, RepeatPenalty = 1.3f, RepeatLastN = 64 });
        Assert.Equal(1, new Sampler(Vocab, SamplingOptions.Greedy).Sample(logits, [1, 1, 1]));
        Assert.Equal(2, penalized.Sample(logits, [5, 1, 1]));

        // Negative logits: -1.0 (token 1) vs -1.2 (token 2); multiplying token 1's by 1.3 gives -1.3, below token 2.
        Array.Fill(logits, -10f);
        logits[1] = -1.0f;
        logits[2] = -1.2f;
        Assert.Equal(2, penalized.Sample(logits, [1]));

        // Outside the window the token is not penalized.
        var narrow = new Sampler(Vocab, new SamplingOptions { Temperature = 0, RepeatPenalty = 1.3f, RepeatLastN = 2 });
        Assert.Equal(1, narrow.Sample(logits, [1, 7, 8]));
    }

    [Fact]
    public void Repetition_penalty_applies_once_per_distinct_token()
    {
        // Dividing twice (3.0 / 1.3² ≈ 1.78) would fall below token 2's 2.0; once (≈ 2.31) stays above.
        var logits = new float[Vocab];
        Array.Fill(logits, -10f);
        logits[1] = 3.0f;
        logits[2] = 2.0f;
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 0, RepeatPenalty = 1.3f });
        Assert.Equal(1, s.Sample(logits, [1, 1, 1, 1]));
    }

    [Fact]
    public void Logit_bias_of_minus_infinity_bans_a_token()
    {
        var logits = RandomLogits(6);
        int best = ArgMax(logits);
        var options = new SamplingOptions { Temperature = 0, LogitBias = new Dictionary<int, float> { [best] = float.NegativeInfinity } };
        int got = new Sampler(Vocab, options).Sample(logits, default);
        Assert.NotEqual(best, got);

        var hot = new Sampler(Vocab, new SamplingOptions { Temperature = 1, TopK = 3, Seed = 1, LogitBias = options.LogitBias });
        Assert.DoesNotContain(best, Draw(hot, logits, 300));
    }

    [Fact]
    public void Logit_bias_can_force_a_token()
    {
        var logits = RandomLogits(7);
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 0.8f, Seed = 2, LogitBias = new Dictionary<int, float> { [123] = 1000f } });
        Assert.All(Draw(s, logits, 20), id => Assert.Equal(123, id));
    }

    [Fact]
    public void Banning_every_token_is_a_clear_error()
    {
        var bias = Enumerable.Range(0, 4).ToDictionary(i => i, _ => float.NegativeInfinity);
        var s = new Sampler(4, new SamplingOptions { Temperature = 0, LogitBias = bias });
        var e = Assert.Throws<InvalidOperationException>(() => s.Sample(new float[] { 1, 2, 3, 4 }, default));
        Assert.Contains("banned", e.Message);
    }

    [Fact]
    public void Out_of_range_options_are_rejected_by_name()
    {
        Assert.Contains("top-p", Assert.Throws<ArgumentException>(() => new Sampler(10, new SamplingOptions { TopP = 0 })).Message);
        Assert.Contains("repeat penalty", Assert.Throws<ArgumentException>(() => new Sampler(10, new SamplingOptions { RepeatPenalty = -1 })).Message);
        Assert.Contains("token 10", Assert.Throws<ArgumentException>(() =>
            new Sampler(10, new SamplingOptions { LogitBias = new Dictionary<int, float> { [10] = 1 } })).Message);
    }

    [Fact]
    public void Sampling_allocates_nothing_after_warm_up()
    {
        var logits = RandomLogits(8);
        int[] history = [1, 2, 3, 4, 5];
        var s = new Sampler(Vocab, new SamplingOptions { Temperature = 0.9f, RepeatPenalty = 1.1f, TopK = 40, TopP = 0.9f, MinP = 0.05f, Seed = 4 });
        var full = new Sampler(Vocab, new SamplingOptions { Temperature = 0.9f, TopK = 0, TopP = 0.9f, Seed = 4 });
        s.Sample(logits, history);
        full.Sample(logits, history);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
        {
            s.Sample(logits, history);
            full.Sample(logits, history);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
