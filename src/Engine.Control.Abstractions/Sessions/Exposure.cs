using Engine.Control.Feedback;

namespace Engine.Control.Sessions;

/// <summary>A recommendation as served (or computed in shadow) to a shopper: the bandit log entry
/// that later events with the same <see cref="RecommendationId"/> reward.</summary>
/// <param name="RecommendationId">Unique id of the recommendation.</param>
/// <param name="CustomerId">The shopper.</param>
/// <param name="Arm">Experiment, arm and model version that produced it.</param>
/// <param name="Context">The features the ranking saw (opaque to the control plane; exported as is).</param>
/// <param name="Actions">Products shown, with the probability the policy gave each.</param>
/// <param name="Timestamp">When it was served.</param>
/// <param name="Shadow">Computed and logged only, never shown: rewards cannot follow.</param>
[GenerateSerializer, Immutable]
public sealed record Exposure(
    [property: Id(0)] string RecommendationId,
    [property: Id(1)] string CustomerId,
    [property: Id(2)] ArmKey Arm,
    [property: Id(3)] string Context,
    [property: Id(4)] IReadOnlyList<ExposedAction> Actions,
    [property: Id(5)] DateTimeOffset Timestamp,
    [property: Id(6)] bool Shadow = false);

/// <summary>One product in a served list, with the probability the policy chose it.</summary>
[GenerateSerializer, Immutable]
public sealed record ExposedAction([property: Id(0)] string ProductId, [property: Id(1)] float Probability);
