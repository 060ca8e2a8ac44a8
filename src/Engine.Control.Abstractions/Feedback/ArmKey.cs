using System.Globalization;

namespace Engine.Control.Feedback;

/// <summary>Which experiment arm and model version a piece of feedback belongs to.</summary>
[GenerateSerializer, Immutable]
public sealed record ArmKey([property: Id(0)] string ExperimentId, [property: Id(1)] string Arm, [property: Id(2)] string ModelVersion)
{
    private const char Separator = '|';

    /// <summary>Experiment id and arm name under which recommendations served outside any experiment are logged
    /// (not a valid experiment name, so no configured experiment can clash with it).</summary>
    public const string NoExperiment = "@none";

    /// <summary>The key of traffic outside any experiment under <paramref name="modelVersion"/>.</summary>
    public static ArmKey Unassigned(string modelVersion) => new(NoExperiment, NoExperiment, modelVersion);

    /// <summary>Key of the stats grain holding shard <paramref name="shard"/> of this arm.</summary>
    /// <exception cref="ArgumentException">A part is empty or contains '|'.</exception>
    public string ToGrainKey(int shard)
    {
        foreach (var part in (ReadOnlySpan<string>)[ExperimentId, Arm, ModelVersion])
            if (string.IsNullOrEmpty(part) || part.Contains(Separator))
                throw new ArgumentException($"arm key part '{part}' must be non-empty and must not contain '{Separator}'");
        return string.Join(Separator, ExperimentId, Arm, ModelVersion, shard.ToString(CultureInfo.InvariantCulture));
    }
}

/// <summary>Kind of a feedback signal. Persisted: explicit, append-only.</summary>
public enum FeedbackKind
{
    /// <summary>First exposure of a customer to the experiment (counts customers, for SRM).</summary>
    Assignment = 1,
    Exposure = 2,
    Click = 3,
    AddToCart = 4,
    Purchase = 5,
    Return = 6,
}

/// <summary>One feedback signal from a session to the pre-aggregators.</summary>
/// <param name="Arm">Experiment, arm, model version.</param>
/// <param name="Kind">What happened.</param>
/// <param name="RecommendationId">The recommendation rewarded (or exposed).</param>
/// <param name="ProductId">The product acted on (the bandit's action); null for assignments.</param>
/// <param name="Context">For exposures: the context features logged.</param>
/// <param name="Actions">For exposures: products shown with their probabilities.</param>
/// <param name="Quantity">Units for carts, purchases, returns.</param>
/// <param name="Timestamp">For exposures: when it was served (default: unknown, the stats grain's clock is used).</param>
/// <param name="Shadow">For exposures: computed and logged only, never shown.</param>
/// <param name="ContextUtf8">For exposures: the context as UTF-8 (<see cref="Sessions.Exposure.ContextUtf8"/>), or null for <paramref name="Context"/>.</param>
[GenerateSerializer, Immutable]
public sealed record FeedbackSignal(
    [property: Id(0)] ArmKey Arm,
    [property: Id(1)] FeedbackKind Kind,
    [property: Id(2)] string RecommendationId,
    [property: Id(3)] string? ProductId = null,
    [property: Id(4)] string? Context = null,
    [property: Id(5)] IReadOnlyList<Sessions.ExposedAction>? Actions = null,
    [property: Id(6)] int Quantity = 1,
    [property: Id(7)] DateTimeOffset Timestamp = default,
    [property: Id(8)] bool Shadow = false,
    [property: Id(9)] byte[]? ContextUtf8 = null);

/// <summary>Reward per signal kind (configurable; the defaults rank click &lt; add to cart &lt;
/// purchase and make a return negative).</summary>
[GenerateSerializer, Immutable]
public sealed record RewardValues(
    [property: Id(0)] double Click = 0.1,
    [property: Id(1)] double AddToCart = 0.3,
    [property: Id(2)] double Purchase = 1.0,
    [property: Id(3)] double Return = -1.0)
{
    /// <summary>The reward of one signal of <paramref name="kind"/>.</summary>
    public double For(FeedbackKind kind) => kind switch
    {
        FeedbackKind.Click => Click,
        FeedbackKind.AddToCart => AddToCart,
        FeedbackKind.Purchase => Purchase,
        FeedbackKind.Return => Return,
        _ => 0,
    };

    /// <summary>Throws <see cref="ArgumentException"/> unless 0 &lt; click &lt; cart &lt; purchase and return &lt; 0.</summary>
    public void Validate()
    {
        if (!(0 < Click && Click < AddToCart && AddToCart < Purchase && Return < 0))
            throw new ArgumentException($"reward values must satisfy 0 < click ({Click}) < add to cart ({AddToCart}) < purchase ({Purchase}) and return ({Return}) < 0");
    }
}

/// <summary>One logged decision for off-policy training: the context, the product shown, the
/// probability the policy gave it, and the reward it earned so far (one per shown product; see
/// <see cref="LoggedDecision"/> for the whole list with rewards per kind).</summary>
[GenerateSerializer, Immutable]
public sealed record DecisionRecord(
    [property: Id(0)] string RecommendationId,
    [property: Id(1)] string Context,
    [property: Id(2)] string Action,
    [property: Id(3)] float Probability,
    [property: Id(4)] double Reward);

/// <summary>One shown product of a <see cref="LoggedDecision"/> and the rewards it earned.</summary>
/// <param name="ProductId">The product (the bandit's action).</param>
/// <param name="Position">1-based position in the served list.</param>
/// <param name="Probability">The probability the policy gave it (its propensity).</param>
/// <param name="Clicks">Click signals joined to it.</param>
/// <param name="Carts">Add-to-cart signals.</param>
/// <param name="Purchases">Purchase signals.</param>
/// <param name="Returns">Return signals.</param>
/// <param name="Reward">Sum of the rewards (<see cref="RewardValues"/>) of those signals.</param>
[GenerateSerializer, Immutable]
public sealed record LoggedAction(
    [property: Id(0)] string ProductId,
    [property: Id(1)] int Position,
    [property: Id(2)] float Probability,
    [property: Id(3)] int Clicks,
    [property: Id(4)] int Carts,
    [property: Id(5)] int Purchases,
    [property: Id(6)] int Returns,
    [property: Id(7)] double Reward);

/// <summary>One logged recommendation (exposure) with its context, shown products and the rewards
/// joined to it so far: a line of the feedback log (docs/FEEDBACK-LOG.md).</summary>
/// <param name="RecommendationId">The recommendation.</param>
/// <param name="Arm">Experiment, arm, model version.</param>
/// <param name="Context">The context features as logged (JSON; opaque here).</param>
/// <param name="ServedAt">When it was served.</param>
/// <param name="Shadow">Computed and logged only, never shown.</param>
/// <param name="Actions">Shown products by position.</param>
/// <param name="UpdatedAt">When a reward was last joined to it, or null.</param>
[GenerateSerializer, Immutable]
public sealed record LoggedDecision(
    [property: Id(0)] string RecommendationId,
    [property: Id(1)] ArmKey Arm,
    [property: Id(2)] string Context,
    [property: Id(3)] DateTimeOffset ServedAt,
    [property: Id(4)] bool Shadow,
    [property: Id(5)] IReadOnlyList<LoggedAction> Actions,
    [property: Id(6)] DateTimeOffset? UpdatedAt);
