namespace Engine.Control.Experiments;

/// <summary>Where a customer falls in one experiment.</summary>
/// <param name="ExperimentId">The experiment.</param>
/// <param name="ConfigVersion">The config version the assignment was computed from.</param>
/// <param name="Enrolled">In the experiment's layer range and the experiment not killed.</param>
/// <param name="ServedArm">The arm to serve: null when not enrolled (default experience); the control
/// arm for the holdout and after a rollback; never the shadow arm.</param>
/// <param name="ShadowArm">The shadow arm to compute and log alongside, or null.</param>
/// <param name="InHoldout">Enrolled but held out: served control, counted apart.</param>
/// <param name="ServedRanking">The served arm's ranking parameters (<see cref="ArmConfig.Ranking"/>), or null
/// for the service default.</param>
[GenerateSerializer, Immutable]
public sealed record Assignment(
    [property: Id(0)] string ExperimentId,
    [property: Id(1)] long ConfigVersion,
    [property: Id(2)] bool Enrolled,
    [property: Id(3)] string? ServedArm,
    [property: Id(4)] string? ShadowArm,
    [property: Id(5)] bool InHoldout,
    [property: Id(6)] ArmRanking? ServedRanking = null);

/// <summary>The assignment function: pure and deterministic (customer id + salt → bucket), so every
/// server computes it locally from the pushed config with no grain call per request.</summary>
public static class ExperimentAssignment
{
    /// <summary>Name under which holdout customers are counted in the arm statistics.</summary>
    public const string HoldoutArm = "holdout";

    /// <summary>Assigns <paramref name="customerId"/> in <paramref name="config"/>.</summary>
    public static Assignment Assign(ExperimentConfig config, string customerId)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentException.ThrowIfNullOrEmpty(customerId);
        if (config.Status == ExperimentStatus.Killed)
            return new Assignment(config.Id, config.Version, false, null, null, false);

        // Layer hash uses only the layer name: experiments of a layer own disjoint ranges of the same
        // buckets, hence mutually exclusive.
        var layerBucket = BucketHash.Bucket("layer:" + config.Layer, customerId, ExperimentConfig.TotalBasisPoints);
        if (layerBucket < config.LayerStart || layerBucket >= config.LayerEnd)
            return new Assignment(config.Id, config.Version, false, null, null, false);

        var shadow = config.Shadow?.Name;
        var control = config.Control.Name;
        if (config.HoldoutBasisPoints > 0 &&
            BucketHash.Bucket("holdout:" + config.Salt, customerId, ExperimentConfig.TotalBasisPoints) < config.HoldoutBasisPoints)
            return new Assignment(config.Id, config.Version, true, control, null, true, config.Control.Ranking);
        if (config.Status == ExperimentStatus.RolledBack)
            return new Assignment(config.Id, config.Version, true, control, null, false, config.Control.Ranking);

        var bucket = BucketHash.Bucket("arm:" + config.Salt, customerId, ExperimentConfig.TotalBasisPoints);
        var served = config.Control;
        var upper = 0;
        foreach (var arm in config.Arms)
        {
            if (arm.IsShadow) continue;
            upper += arm.WeightBasisPoints;
            if (bucket < upper) { served = arm; break; }
        }
        return new Assignment(config.Id, config.Version, true, served.Name, shadow, false, served.Ranking);
    }
}
