using System.Text.Json;

namespace Engine.Runtime.Ranking;

/// <summary>Settings of <see cref="HeadTrainer.Train"/>.</summary>
public sealed record HeadTrainingOptions
{
    /// <summary>Version string of the trained heads file.</summary>
    public required string Version { get; init; }

    /// <summary>L2 penalty of each head's fit (<see cref="LogisticFitOptions.L2"/>).</summary>
    public double L2 { get; init; } = new LogisticFitOptions().L2;

    /// <summary>
    /// Weigh each shown product by 1 / probability (inverse propensity scoring), so a product the logging policy
    /// rarely showed counts for the times it was not shown. With the deterministic ranking of <c>engine serve</c>
    /// every probability is 1 and this changes nothing.
    /// </summary>
    public bool InversePropensity { get; init; }

    /// <summary>Propensities are clipped below at this before inverting (keeps a few rare shows from dominating).</summary>
    public double MinPropensity { get; init; } = 0.01;

    /// <summary>The heads the "before" figures are measured with and a head without data keeps (default <see cref="ScoringHeads.Default"/>).</summary>
    public ScoringHeads? Initial { get; init; }
}

/// <summary>One head's training figures.</summary>
/// <param name="Head">"click", "addToCart", "purchase" or "return".</param>
/// <param name="Examples">Training examples (shown products for click; clicked ones for add-to-cart; …).</param>
/// <param name="Positives">Examples with the outcome.</param>
/// <param name="LogLossBefore">Mean log loss of the initial head on these examples (NaN with none).</param>
/// <param name="LogLossAfter">Mean log loss of the trained head (in-sample).</param>
/// <param name="AucBefore">ROC AUC of the initial head (NaN with one class only).</param>
/// <param name="AucAfter">ROC AUC of the trained head (in-sample).</param>
/// <param name="Fitted">False when the examples hold one class only (or none) and the initial head was kept.</param>
public sealed record HeadReport(string Head, int Examples, int Positives, double LogLossBefore, double LogLossAfter, double AucBefore, double AucAfter, bool Fitted);

/// <summary>The examples of the four heads, built from logged decisions.</summary>
/// <param name="Click">Every shown product: clicked (or carted or bought: the funnel implies the click)?</param>
/// <param name="AddToCart">Clicked products: added to the cart (or bought)?</param>
/// <param name="Purchase">Carted products: bought?</param>
/// <param name="Return">Bought products: returned?</param>
/// <param name="Decisions">Decisions used (shadow ones are skipped: never shown, never rewarded).</param>
/// <param name="SkippedShadow">Shadow decisions skipped.</param>
public sealed record HeadTrainingSets(
    IReadOnlyList<LabeledExample> Click, IReadOnlyList<LabeledExample> AddToCart, IReadOnlyList<LabeledExample> Purchase,
    IReadOnlyList<LabeledExample> Return, int Decisions, int SkippedShadow);

/// <summary>
/// Trains the four scoring heads from a feedback log (<see cref="FeedbackLog"/>): click given exposure, add-to-cart
/// given click, purchase given add-to-cart, return given purchase, each a weighted Newton fit
/// (<see cref="LogisticRegression.Fit"/>) over the features the heads saw at serving time (the decision's context).
/// </summary>
public static class HeadTrainer
{
    /// <summary>Names of the heads, in file order.</summary>
    public static IReadOnlyList<string> HeadNames { get; } = ["click", "addToCart", "purchase", "return"];

    /// <summary>Builds the training sets of the four heads.</summary>
    /// <exception cref="FormatException">A decision whose context cannot be read, or a position without a context row
    /// (the message names the recommendation id).</exception>
    public static HeadTrainingSets BuildSets(IEnumerable<FeedbackLogLine> decisions, HeadTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(decisions);
        ArgumentNullException.ThrowIfNull(options);
        var click = new List<LabeledExample>();
        var cart = new List<LabeledExample>();
        var purchase = new List<LabeledExample>();
        var @return = new List<LabeledExample>();
        int used = 0, shadow = 0;
        foreach (var d in decisions)
        {
            if (d.Shadow) { shadow++; continue; }
            float[][] rows;
            try
            {
                using var doc = JsonDocument.Parse(d.Context);
                rows = ExposureContext.ReadItems(doc.RootElement);
            }
            catch (JsonException e) { throw new FormatException($"decision {d.RecommendationId}: context is not JSON ({e.Message})"); }
            catch (FormatException e) { throw new FormatException($"decision {d.RecommendationId}: {e.Message}"); }
            used++;
            foreach (var a in d.Actions)
            {
                if (a.Position > rows.Length)
                    throw new FormatException($"decision {d.RecommendationId}: position {a.Position} has no features (context has {rows.Length} items)");
                float[] x = rows[a.Position - 1];
                double weight = options.InversePropensity ? 1 / Math.Max(a.Probability, options.MinPropensity) : 1;
                bool bought = a.Purchases > 0 || a.Returns > 0;      // a return implies the purchase
                bool carted = bought || a.Carts > 0;
                bool clicked = carted || a.Clicks > 0;
                click.Add(new LabeledExample(x, clicked) { Weight = weight });
                if (clicked) cart.Add(new LabeledExample(x, carted) { Weight = weight });
                if (carted) purchase.Add(new LabeledExample(x, bought) { Weight = weight });
                if (bought) @return.Add(new LabeledExample(x, a.Returns > 0) { Weight = weight });
            }
        }
        return new HeadTrainingSets(click, cart, purchase, @return, used, shadow);
    }

    /// <summary>Trains the heads; a head whose examples hold one class only keeps the initial head.</summary>
    /// <exception cref="ArgumentException">No decision with a shown product (an empty log, or shadow decisions only).</exception>
    public static (ScoringHeads Heads, IReadOnlyList<HeadReport> Report) Train(HeadTrainingSets sets, HeadTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(sets);
        ArgumentNullException.ThrowIfNull(options);
        if (sets.Click.Count == 0)
            throw new ArgumentException(sets.SkippedShadow > 0
                ? $"no served decisions to train on ({sets.SkippedShadow} shadow decisions only: they are never shown)"
                : "no logged decisions to train on");
        var initial = options.Initial ?? ScoringHeads.Default;
        var fit = new LogisticFitOptions { L2 = options.L2 };
        var data = new[] { sets.Click, sets.AddToCart, sets.Purchase, sets.Return };
        var old = new[] { initial.Click, initial.AddToCart, initial.Purchase, initial.Return };
        var heads = new LogisticHead[4];
        var report = new HeadReport[4];
        for (int h = 0; h < 4; h++)
        {
            var examples = data[h];
            int positives = examples.Count(e => e.Label);
            bool both = positives > 0 && positives < examples.Count;
            heads[h] = both ? LogisticRegression.Fit(examples, fit) : old[h];
            report[h] = new HeadReport(HeadNames[h], examples.Count, positives,
                LogisticRegression.LogLoss(old[h], examples), LogisticRegression.LogLoss(heads[h], examples),
                LogisticRegression.Auc(old[h], examples), LogisticRegression.Auc(heads[h], examples), both);
        }
        return (new ScoringHeads(options.Version, heads[0], heads[1], heads[2], heads[3]), report);
    }
}
