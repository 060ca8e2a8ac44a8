using Engine.Control.Content;
using Engine.Control.Experiments;
using Engine.Control.Feedback;
using Engine.Control.Sessions;

namespace Engine.Control.Tests;

/// <summary>Persisted and wire enums are append-only (STYLE.md habit 5): these lists may only grow.</summary>
public class EnumFreezeTests
{
    private static void Frozen<T>(params (string Name, int Value)[] expected) where T : struct, Enum
    {
        var actual = Enum.GetValues<T>().Select(v => (v.ToString(), Convert.ToInt32(v))).ToArray();
        Assert.Equal(expected, actual.Take(expected.Length));
    }

    [Fact]
    public void Event_kinds_keep_their_values() => Frozen<EventKind>(
        ("View", 1), ("Click", 2), ("AddToCart", 3), ("RemoveFromCart", 4), ("Purchase", 5), ("Return", 6),
        ("SearchWithResults", 7), ("SearchNoResults", 8), ("Dwell", 9));

    [Fact]
    public void Event_outcomes_keep_their_values() => Frozen<EventOutcome>(("Accepted", 1), ("Duplicate", 2), ("UnknownProduct", 3), ("Invalid", 4));

    [Fact]
    public void Review_statuses_keep_their_values() => Frozen<ReviewStatus>(("AutoPublished", 1), ("PendingReview", 2), ("Approved", 3), ("Rejected", 4));

    [Fact]
    public void Validation_issue_kinds_keep_their_values() => Frozen<ValidationIssueKind>(
        ("BannedTerm", 1), ("UnsupportedMaterial", 2), ("UnsupportedSize", 3), ("UnsupportedNumber", 4), ("UnsupportedFeature", 5));

    [Fact]
    public void Experiment_statuses_keep_their_values() => Frozen<ExperimentStatus>(("Running", 1), ("Killed", 2), ("RolledBack", 3));

    [Fact]
    public void Feedback_kinds_keep_their_values() => Frozen<FeedbackKind>(
        ("Assignment", 1), ("Exposure", 2), ("Click", 3), ("AddToCart", 4), ("Purchase", 5), ("Return", 6));
}
