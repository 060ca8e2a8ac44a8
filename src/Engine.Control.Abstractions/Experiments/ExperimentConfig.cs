namespace Engine.Control.Experiments;

/// <summary>Lifecycle of an experiment. Persisted and pushed to servers: explicit, append-only.</summary>
public enum ExperimentStatus
{
    /// <summary>Customers in range are split across the arms.</summary>
    Running = 1,
    /// <summary>Kill switch: nobody is enrolled; everyone gets the default experience.</summary>
    Killed = 2,
    /// <summary>Instant rollback: everyone enrolled is served the control arm (still measured).</summary>
    RolledBack = 3,
}

/// <summary>One arm. Served arms' weights sum to <see cref="ExperimentConfig.TotalBasisPoints"/>;
/// the shadow arm has weight 0: it is computed and logged for everyone enrolled, never served.
/// <see cref="Ranking"/>, when set, overrides the ranking's blend weights for the customers served this arm.</summary>
[GenerateSerializer, Immutable]
public sealed record ArmConfig(
    [property: Id(0)] string Name,
    [property: Id(1)] int WeightBasisPoints,
    [property: Id(2)] bool IsControl = false,
    [property: Id(3)] bool IsShadow = false,
    [property: Id(4)] ArmRanking? Ranking = null);

/// <summary>An experiment as pushed to every server; assignment is a local computation on it
/// (<see cref="ExperimentAssignment.Assign"/>).</summary>
/// <param name="Id">Experiment id.</param>
/// <param name="Salt">Hash salt of the arm split: a new salt reshuffles customers.</param>
/// <param name="Layer">Experiments in one layer are mutually exclusive: they hash customers with the
/// layer name and own disjoint ranges of its buckets.</param>
/// <param name="LayerStart">First layer bucket owned (inclusive), in [0, 10000).</param>
/// <param name="LayerEnd">Last layer bucket owned (exclusive), in (LayerStart, 10000].</param>
/// <param name="HoldoutBasisPoints">Share of enrolled customers held out (served control, counted apart).</param>
/// <param name="Arms">Exactly one control arm, at most one shadow arm.</param>
/// <param name="Status">Running, killed or rolled back.</param>
/// <param name="Version">Set by the experiment grain, +1 per change.</param>
[GenerateSerializer, Immutable]
public sealed record ExperimentConfig(
    [property: Id(0)] string Id,
    [property: Id(1)] string Salt,
    [property: Id(2)] string Layer,
    [property: Id(3)] int LayerStart,
    [property: Id(4)] int LayerEnd,
    [property: Id(5)] int HoldoutBasisPoints,
    [property: Id(6)] IReadOnlyList<ArmConfig> Arms,
    [property: Id(7)] ExperimentStatus Status = ExperimentStatus.Running,
    [property: Id(8)] long Version = 0)
{
    /// <summary>Buckets in a layer and in an arm split: weights are basis points (1/100 of a percent).</summary>
    public const int TotalBasisPoints = 10_000;

    /// <summary>The control arm.</summary>
    public ArmConfig Control => Arms.First(a => a.IsControl);

    /// <summary>The shadow arm, if any.</summary>
    public ArmConfig? Shadow => Arms.FirstOrDefault(a => a.IsShadow);

    /// <summary>Whether <paramref name="arm"/> names an arm of this experiment.</summary>
    public bool HasArm(string arm) => Arms.Any(a => a.Name == arm);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first rule broken.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        static bool IsName(string s) => !string.IsNullOrEmpty(s) && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        Check(IsName(Id), $"experiment id '{Id}' must be letters, digits, '-', '_' or '.'");
        Check(!string.IsNullOrEmpty(Salt), $"experiment '{Id}': salt must not be empty");
        Check(IsName(Layer), $"experiment '{Id}': layer '{Layer}' must be letters, digits, '-', '_' or '.'");
        Check(0 <= LayerStart && LayerStart < LayerEnd && LayerEnd <= TotalBasisPoints,
            $"experiment '{Id}': layer range [{LayerStart}, {LayerEnd}) must lie in [0, {TotalBasisPoints}] and not be empty");
        Check(HoldoutBasisPoints is >= 0 and < TotalBasisPoints, $"experiment '{Id}': holdout {HoldoutBasisPoints} must be in [0, {TotalBasisPoints})");
        Check(Arms is { Count: >= 2 }, $"experiment '{Id}' needs at least two arms");
        Check(Arms.All(a => IsName(a.Name)), $"experiment '{Id}': arm names must be letters, digits, '-', '_' or '.'");
        Check(Arms.Select(a => a.Name).Distinct().Count() == Arms.Count, $"experiment '{Id}': arm names must be unique");
        Check(Arms.Count(a => a.IsControl) == 1, $"experiment '{Id}' needs exactly one control arm");
        Check(Arms.Count(a => a.IsShadow) <= 1, $"experiment '{Id}' may have at most one shadow arm");
        Check(!Arms.Any(a => a.IsShadow && a.IsControl), $"experiment '{Id}': the control arm cannot be the shadow arm");
        Check(Arms.All(a => a.IsShadow ? a.WeightBasisPoints == 0 : a.WeightBasisPoints > 0),
            $"experiment '{Id}': served arms need a positive weight and the shadow arm weight 0");
        var total = Arms.Sum(a => a.WeightBasisPoints);
        Check(total == TotalBasisPoints, $"experiment '{Id}': served arm weights sum to {total}, not {TotalBasisPoints}");
        foreach (var arm in Arms)
            Check(arm.Ranking?.Validate() is null, $"experiment '{Id}', arm '{arm.Name}': {arm.Ranking?.Validate()}");
        Check(Arms.Count <= SrmCheck.MaxArms, $"experiment '{Id}': at most {SrmCheck.MaxArms} arms");
    }
}
