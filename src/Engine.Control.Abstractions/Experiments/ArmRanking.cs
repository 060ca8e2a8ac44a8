namespace Engine.Control.Experiments;

/// <summary>
/// Ranking parameters an experiment arm serves: overrides of the ranking's blend weights (the score
/// formula of Engine.Runtime's <c>BlendWeights</c>, same names), each null to keep the service default.
/// Pushed with the config, so a server resolves them with the arm, without a grain call.
/// </summary>
/// <param name="Similarity">Weight of the vector similarity.</param>
/// <param name="Click">Weight of p(click).</param>
/// <param name="Purchase">Weight of p(kept purchase).</param>
/// <param name="Margin">Weight of the margin fraction.</param>
/// <param name="ReturnRisk">Penalty per unit of p(return).</param>
/// <param name="BackorderRisk">Penalty per unit of backorder risk.</param>
/// <param name="Boost">Weight of merchandising boosts.</param>
/// <param name="ProfileMix">The profile's share of a blended query vector, in [0, 1].</param>
[GenerateSerializer, Immutable]
public sealed record ArmRanking(
    [property: Id(0)] float? Similarity = null,
    [property: Id(1)] float? Click = null,
    [property: Id(2)] float? Purchase = null,
    [property: Id(3)] float? Margin = null,
    [property: Id(4)] float? ReturnRisk = null,
    [property: Id(5)] float? BackorderRisk = null,
    [property: Id(6)] float? Boost = null,
    [property: Id(7)] float? ProfileMix = null)
{
    /// <summary>Null when every given weight is finite and <see cref="ProfileMix"/>, if given, lies in [0, 1]; else why not.</summary>
    public string? Validate()
    {
        float?[] all = [Similarity, Click, Purchase, Margin, ReturnRisk, BackorderRisk, Boost, ProfileMix];
        foreach (float? w in all)
            if (w is { } v && !float.IsFinite(v)) return "ranking weights must be finite";
        if (ProfileMix is < 0 or > 1) return $"ranking ProfileMix {ProfileMix} must be in [0, 1]";
        return null;
    }
}
