using Engine.Control.Feedback;

namespace Engine.Control.Sessions;

/// <summary>A recommendation as served (or computed in shadow) to a shopper: the bandit log entry
/// that later events with the same <see cref="RecommendationId"/> reward.</summary>
/// <param name="RecommendationId">Unique id of the recommendation.</param>
/// <param name="CustomerId">The shopper.</param>
/// <param name="Arm">Experiment, arm and model version that produced it.</param>
/// <param name="Context">The features the ranking saw (opaque to the control plane; exported as is); "" when
/// <paramref name="ContextUtf8"/> holds it.</param>
/// <param name="Actions">Products shown, with the probability the policy gave each.</param>
/// <param name="Timestamp">When it was served.</param>
/// <param name="Shadow">Computed and logged only, never shown: rewards cannot follow.</param>
/// <param name="ContextUtf8">The context as UTF-8 bytes, or null for <paramref name="Context"/>: the form the server's
/// exposure logger sends (one array half the size of the string, copied as is into the stats shards' compact decision
/// log; exported as the same text). Not modified once sent.</param>
[GenerateSerializer, Immutable]
public sealed record Exposure(
    [property: Id(0)] string RecommendationId,
    [property: Id(1)] string CustomerId,
    [property: Id(2)] ArmKey Arm,
    [property: Id(3)] string Context,
    [property: Id(4)] IReadOnlyList<ExposedAction> Actions,
    [property: Id(5)] DateTimeOffset Timestamp,
    [property: Id(6)] bool Shadow = false,
    [property: Id(7)] byte[]? ContextUtf8 = null);

/// <summary>One product in a served list, with the probability the policy chose it.</summary>
[GenerateSerializer, Immutable]
public sealed record ExposedAction([property: Id(0)] string ProductId, [property: Id(1)] float Probability);
