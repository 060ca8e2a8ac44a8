using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

public sealed class ScoringHeadsTests
{
    /// <summary>Examples drawn from a known logistic model over features like the pipeline's.</summary>
    private static List<LabeledExample> Sample(LogisticHead truth, int count, int seed)
    {
        var rng = new Random(seed);
        var data = new List<LabeledExample>(count);
        for (int i = 0; i < count; i++)
        {
            var x = new float[RankingFeatures.Count];
            x[RankingFeatures.Similarity] = (float)(rng.NextDouble() * 2 - 1);
            x[RankingFeatures.LogPrice] = (float)(1 + rng.NextDouble() * 5);
            x[RankingFeatures.RelativePrice] = (float)(rng.NextDouble() - 0.5);
            x[RankingFeatures.Margin] = (float)rng.NextDouble();
            x[RankingFeatures.CategoryMatch] = rng.Next(2);
            x[RankingFeatures.Popularity] = (float)Math.Pow(rng.NextDouble(), 3);
            x[RankingFeatures.BackorderRisk] = (float)rng.NextDouble();
            x[RankingFeatures.InStock] = rng.NextDouble() < 0.9 ? 1 : 0;
            data.Add(new LabeledExample(x, rng.NextDouble() < truth.Predict(x)));
        }
        return data;
    }

    private static readonly LogisticHead Truth = new(-1.0f, [2.5f, -0.4f, -1.2f, 0.8f, 0.7f, 1.5f, -1.0f, 1.2f]);

    [Fact]
    public void Newton_fit_recovers_a_known_model_and_ranks_like_it()
    {
        var train = Sample(Truth, 20000, 1);
        var test = Sample(Truth, 5000, 2);
        var fitted = LogisticRegression.Fit(train);

        for (int i = 0; i < RankingFeatures.Count; i++)
            Assert.True(Math.Abs(fitted.Weights[i] - Truth.Weights[i]) < 0.3, $"{RankingFeatures.Names[i]}: {fitted.Weights[i]} vs {Truth.Weights[i]}");
        Assert.True(Math.Abs(fitted.Bias - Truth.Bias) < 0.5, $"bias {fitted.Bias}");

        // Held-out log loss: as good as the true model's (within noise) and far better than the default heads'.
        double fittedLoss = LogisticRegression.LogLoss(fitted, test);
        double trueLoss = LogisticRegression.LogLoss(Truth, test);
        double defaultLoss = LogisticRegression.LogLoss(ScoringHeads.Default.Click, test);
        Assert.True(fittedLoss < trueLoss + 0.01, $"fitted {fittedLoss} vs true {trueLoss}");
        Assert.True(fittedLoss < defaultLoss - 0.05, $"fitted {fittedLoss} vs default {defaultLoss}");

        // Ranks in the true model's order: Spearman-like check on 500 fresh points.
        var points = test.Take(500).Select(e => e.Features).ToArray();
        var byTruth = points.OrderBy(x => Truth.Logit(x)).ToArray();
        var byFit = points.OrderBy(x => fitted.Logit(x)).ToArray();
        int agree = 0;
        for (int i = 0; i < points.Length; i++) agree += Math.Abs(Array.IndexOf(byFit, byTruth[i]) - i) <= 10 ? 1 : 0;
        Assert.True(agree > 450, $"{agree}/500 within 10 ranks");
    }

    [Fact]
    public void Train_fits_each_head_on_its_stage_of_the_funnel()
    {
        var rng = new Random(3);
        var clickTruth = Truth;
        var cartTruth = new LogisticHead(-0.5f, [1f, 0, 0, 0, 0, 0, -2f, 2f]);
        var feedback = new List<FeedbackRecord>();
        foreach (var e in Sample(clickTruth, 20000, 4))
        {
            bool cart = e.Label && rng.NextDouble() < cartTruth.Predict(e.Features);
            bool buy = cart && rng.NextDouble() < 0.6;
            bool ret = buy && rng.NextDouble() < 0.1;
            feedback.Add(new FeedbackRecord(e.Features, e.Label, cart, buy, ret));
        }
        var heads = ScoringHeads.Train(feedback, "trained-test-1");
        Assert.Equal("trained-test-1", heads.Version);
        Assert.True(Math.Abs(heads.Click.Weights[RankingFeatures.Similarity] - 2.5f) < 0.3);
        Assert.True(Math.Abs(heads.AddToCart.Weights[RankingFeatures.BackorderRisk] - -2f) < 0.6, $"{heads.AddToCart.Weights[RankingFeatures.BackorderRisk]}");
        // Purchase | cart is a coin with p = 0.6 whatever the features: the fitted head says so.
        var anyX = feedback[0].Features;
        Assert.InRange(heads.Purchase.Predict(anyX), 0.5f, 0.7f);
    }

    [Fact]
    public void Heads_file_round_trips_and_matches_features_by_name()
    {
        var heads = ScoringHeads.Default;
        var back = ScoringHeads.FromJson(heads.ToJson());
        Assert.Equal(heads.Version, back.Version);
        Assert.Equal(heads.Return.Weights, back.Return.Weights);
        Assert.Equal(heads.Click.Bias, back.Click.Bias);

        // Features listed in another order, one missing: matched by name, the missing one gets 0.
        string json = """
        {"version":"v2","features":["popularity","similarity"],
         "heads":{"click":{"bias":-1,"weights":[2,3]},"addToCart":{"bias":0,"weights":[0,0]},
                  "purchase":{"bias":0,"weights":[0,0]},"return":{"bias":0,"weights":[0,0]}}}
        """;
        var h = ScoringHeads.FromJson(json);
        Assert.Equal(3f, h.Click.Weights[RankingFeatures.Similarity]);
        Assert.Equal(2f, h.Click.Weights[RankingFeatures.Popularity]);
        Assert.Equal(0f, h.Click.Weights[RankingFeatures.Margin]);
    }

    [Theory]
    [InlineData("""{"version":"v","features":["nope"],"heads":{}}""", "unknown feature \"nope\"")]
    [InlineData("""{"features":[],"heads":{}}""", "\"version\" is missing")]
    [InlineData("""{"version":"v","features":["margin"],"heads":{"click":{"bias":0,"weights":[1]}}}""", "head \"addToCart\" is missing")]
    [InlineData("""{"version":"v","features":["margin"],"heads":{"click":{"bias":0,"weights":[1,2]}}}""", "2 weights for 1 features")]
    [InlineData("""not json""", "not a scoring heads JSON file")]
    public void Bad_heads_files_are_rejected_with_the_reason(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => ScoringHeads.FromJson(json, "h.json"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("h.json", e.Message);
    }
}
