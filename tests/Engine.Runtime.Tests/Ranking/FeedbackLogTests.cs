using System.Text.Json;
using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

/// <summary>The feedback log (docs/FEEDBACK-LOG.md): exposure context, JSON lines, and training the heads from it.</summary>
public sealed class FeedbackLogTests
{
    /// <summary>Click model the synthetic shoppers follow (order of <see cref="RankingFeatures.Names"/>).</summary>
    private static readonly LogisticHead ClickTruth = new(-1.0f, [2.5f, -0.4f, -1.2f, 0.8f, 0.7f, 1.5f, -1.0f, 1.2f]);

    /// <summary>Add-to-cart given click.</summary>
    private static readonly LogisticHead CartTruth = new(-0.5f, [1.0f, -0.3f, -0.8f, 0f, 0.5f, 0.5f, -1.5f, 1.5f]);

    /// <summary>Largest |fitted − true| of a weight (the bias gets <see cref="BiasTolerance"/>): about 4 standard errors
    /// at 20,000 examples (the same bounds ScoringHeadsTests uses on the fit alone).</summary>
    private const float WeightTolerance = 0.3f;

    private const float BiasTolerance = 0.5f;

    /// <summary>Decisions of 8 shown products whose features are drawn like the pipeline's and whose clicks and carts
    /// follow <see cref="ClickTruth"/> and <see cref="CartTruth"/>; every tenth is a shadow decision (never rewarded).</summary>
    private static List<FeedbackLogLine> Synthetic(int decisions, int seed)
    {
        const int shown = 8;
        var rng = new Random(seed);
        var lines = new List<FeedbackLogLine>(decisions);
        var t0 = new DateTimeOffset(2026, 11, 26, 6, 0, 0, TimeSpan.Zero);
        for (int d = 0; d < decisions; d++)
        {
            bool shadow = d % 10 == 9;
            var features = new float[shown * RankingFeatures.Count];
            var actions = new List<FeedbackLogAction>(shown);
            for (int i = 0; i < shown; i++)
            {
                var x = features.AsSpan(i * RankingFeatures.Count, RankingFeatures.Count);
                x[RankingFeatures.Similarity] = (float)(rng.NextDouble() * 2 - 1);
                x[RankingFeatures.LogPrice] = (float)(1 + rng.NextDouble() * 5);
                x[RankingFeatures.RelativePrice] = (float)(rng.NextDouble() - 0.5);
                x[RankingFeatures.Margin] = (float)rng.NextDouble();
                x[RankingFeatures.CategoryMatch] = rng.Next(2);
                x[RankingFeatures.Popularity] = (float)Math.Pow(rng.NextDouble(), 3);
                x[RankingFeatures.BackorderRisk] = (float)rng.NextDouble();
                x[RankingFeatures.InStock] = rng.NextDouble() < 0.9 ? 1 : 0;
                bool click = !shadow && rng.NextDouble() < ClickTruth.Predict(x);
                bool cart = click && rng.NextDouble() < CartTruth.Predict(x);
                bool buy = cart && rng.NextDouble() < 0.5;
                bool ret = buy && rng.NextDouble() < 0.2;
                double reward = (click ? 0.1 : 0) + (cart ? 0.3 : 0) + (buy ? 1 : 0) + (ret ? -1 : 0);
                actions.Add(new FeedbackLogAction($"p{rng.Next(100_000)}", i + 1, 1f, click ? 1 : 0, cart ? 1 : 0, buy ? 1 : 0, ret ? 1 : 0, reward));
            }
            string context = ExposureContext.Write(features, shown, new RankRequest { K = shown, QueryText = "summer dress" });
            lines.Add(new FeedbackLogLine($"rec-{d}", "exp", shadow ? "shadow" : "b", "heads-default-1+test", t0.AddSeconds(d),
                actions.Any(a => a.Clicks > 0) ? t0.AddSeconds(d + 5) : null, shadow, context, actions));
        }
        return lines;
    }

    [Fact]
    public void Training_from_a_written_log_recovers_a_known_click_model_and_the_heads_file_loads_into_the_pipeline()
    {
        string dir = Directory.CreateTempSubdirectory("feedback-").FullName;
        try
        {
            // 2,778 decisions, a tenth of them shadow: 20,000 served click examples.
            var decisions = Synthetic(2778, seed: 11);
            string log = Path.Combine(dir, "log.jsonl");
            using (var w = new StreamWriter(log)) FeedbackLog.Write(w, decisions);

            var read = FeedbackLog.ReadFile(log);
            Assert.Equal(decisions.Count, read.Count);
            var options = new HeadTrainingOptions { Version = "trained-test" };
            var sets = HeadTrainer.BuildSets(read, options);
            Assert.Equal(2778 / 10, sets.SkippedShadow);
            Assert.Equal((2778 - 2778 / 10) * 8, sets.Click.Count);
            Assert.Equal(sets.Click.Count(e => e.Label), sets.AddToCart.Count);
            var (heads, report) = HeadTrainer.Train(sets, options);

            for (int i = 0; i < RankingFeatures.Count; i++)
            {
                Assert.True(Math.Abs(heads.Click.Weights[i] - ClickTruth.Weights[i]) < WeightTolerance,
                    $"click {RankingFeatures.Names[i]}: {heads.Click.Weights[i]} vs {ClickTruth.Weights[i]}");
            }
            Assert.True(Math.Abs(heads.Click.Bias - ClickTruth.Bias) < BiasTolerance, $"click bias {heads.Click.Bias}");
            Assert.True(Math.Abs(heads.AddToCart.Weights[RankingFeatures.BackorderRisk] - CartTruth.Weights[RankingFeatures.BackorderRisk]) < 2 * WeightTolerance,
                $"cart backorder weight {heads.AddToCart.Weights[RankingFeatures.BackorderRisk]}");

            var click = report[0];
            Assert.Equal(("click", true), (click.Head, click.Fitted));
            Assert.True(click.LogLossAfter < click.LogLossBefore - 0.05, $"log loss {click.LogLossBefore} → {click.LogLossAfter}");
            Assert.True(click.AucAfter > 0.75 && click.AucAfter > click.AucBefore, $"AUC {click.AucBefore} → {click.AucAfter}");
            Assert.All(report, r => Assert.True(r.Fitted, $"{r.Head} was not fitted"));

            string file = Path.Combine(dir, "heads.json");
            heads.Save(file);
            var loaded = ScoringHeads.Load(file);
            Assert.Equal(heads.Click.Weights, loaded.Click.Weights);
            using var pipeline = RankingFixture.Pipeline(heads: loaded);
            var result = pipeline.Rank(new RankRequest { QueryText = "linen shirt", K = 5 });
            Assert.Equal(5, result.Items.Count);
            Assert.StartsWith("trained-test+", result.ModelVersion);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Logged_features_are_the_ones_the_heads_scored()
    {
        // With a blend of p(click) alone, an item's score is the click head on its features: the recomputed
        // features must give it back.
        var clickOnly = new BlendWeights { Similarity = 0, Click = 1, Purchase = 0, Margin = 0, ReturnRisk = 0, BackorderRisk = 0, Boost = 0 };
        using var pipeline = RankingFixture.Pipeline(new RankingOptions { Blend = clickOnly });
        foreach (var request in new[]
        {
            new RankRequest { QueryText = "wool sweater", K = 10 },
            new RankRequest { ProfileVector = RankingFixture.Profile("running shoes"), K = 10, Category = pipeline.Products[0].Category },
            new RankRequest { K = 10 },
        })
        {
            var result = pipeline.Rank(request);
            var features = new float[result.Items.Count * RankingFeatures.Count];
            pipeline.ComputeFeatures(request, result.Items, features);
            using var doc = JsonDocument.Parse(ExposureContext.Write(features, result.Items.Count, request));
            float[][] rows = ExposureContext.ReadItems(doc.RootElement);
            Assert.Equal(result.Items.Count, rows.Length);
            for (int i = 0; i < rows.Length; i++)
                Assert.True(Math.Abs(pipeline.Heads.Click.Predict(rows[i]) - result.Items[i].Score) < 1e-5,
                    $"item {i} ({result.Items[i].ProductId}): p(click) {pipeline.Heads.Click.Predict(rows[i])} vs score {result.Items[i].Score}");
        }
    }

    [Fact]
    public void A_malformed_line_is_reported_with_its_line_number()
    {
        string good = FeedbackLog.ToLine(Synthetic(1, seed: 3)[0]);
        var e = Assert.Throws<FeedbackLogException>(() => FeedbackLog.Read(new StringReader(good + "\n\n{\"v\":1,\"actions\":[]}\n"), "log.jsonl").ToList());
        Assert.Equal(3, e.Line);
        Assert.StartsWith("log.jsonl:3:", e.Message);
        Assert.Contains("\"context\"", e.Message);
        var notJson = Assert.Throws<FeedbackLogException>(() => FeedbackLog.Read(new StringReader(good + "\nnot json"), "log.jsonl").ToList());
        Assert.Equal(2, notJson.Line);
        var bad = good.Replace("\"probability\":1", "\"probability\":0");
        Assert.Contains("probability", Assert.Throws<FeedbackLogException>(() => FeedbackLog.Parse(bad)).Message);
    }

    [Fact]
    public void Auc_counts_ties_half_and_weights_scale_the_loss_like_repeated_examples()
    {
        var head = new LogisticHead(0, [1, 0, 0, 0, 0, 0, 0, 0]);
        static float[] X(float s) => [s, 0, 0, 0, 0, 0, 0, 0];
        Assert.Equal(1.0, LogisticRegression.Auc(head, [new(X(1), true), new(X(0), false)]));
        Assert.Equal(0.0, LogisticRegression.Auc(head, [new(X(0), true), new(X(1), false)]));
        Assert.Equal(0.5, LogisticRegression.Auc(head, [new(X(1), true), new(X(1), false)]));
        Assert.True(double.IsNaN(LogisticRegression.Auc(head, [new(X(1), true)])));

        var rng = new Random(5);
        var examples = Enumerable.Range(0, 400).Select(_ => new LabeledExample(X((float)rng.NextDouble() * 4 - 2), rng.NextDouble() < 0.4)).ToList();
        var weighted = examples.Select((e, i) => e with { Weight = i % 2 == 0 ? 2 : 1 }).ToList();
        var repeated = examples.SelectMany((e, i) => i % 2 == 0 ? new[] { e, e } : [e]).ToList();
        var a = LogisticRegression.Fit(weighted);
        var b = LogisticRegression.Fit(repeated);
        Assert.True(Math.Abs(a.Bias - b.Bias) < 1e-4 && Math.Abs(a.Weights[0] - b.Weights[0]) < 1e-4, $"{a.Bias},{a.Weights[0]} vs {b.Bias},{b.Weights[0]}");
        Assert.Equal(LogisticRegression.LogLoss(a, repeated), LogisticRegression.LogLoss(a, weighted), 9);
    }
}
