using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Engine.Control.Sessions;
using Engine.Runtime.Ranking;
using Orleans;

namespace Engine.Cli.Hosting;

/// <summary>Profile vectors from the control plane's <see cref="ICustomerSessionGrain"/> (one in-silo grain call per request).</summary>
public sealed class GrainShopperProfiles(IGrainFactory grains) : IShopperProfiles
{
    /// <inheritdoc/>
    public async ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken)
    {
        SessionProfile profile = await grains.GetGrain<ICustomerSessionGrain>(customerId).GetProfile().ConfigureAwait(false);
        return profile.Profile is { Length: > 0 } v ? v : null;
    }
}

/// <summary>
/// The control plane's product embeddings served from the ranking's own <see cref="ProductIndex"/>, so a
/// session's profile vector is built from the same vectors the ranking scans, and the demo catalog's
/// products are known to the sessions without upserting each into a product grain.
/// </summary>
public sealed class IndexProductEmbeddings(ProductIndex index) : IProductEmbeddings
{
    /// <inheritdoc/>
    public ValueTask<float[]?> GetAsync(string productId)
    {
        var vector = new float[index.Dimensions];
        return ValueTask.FromResult(index.TryGetVector(productId, vector) ? vector : null);
    }
}

/// <summary>Experiment arm labels from the control plane's local assigner (pushed configs; no grain call per request).</summary>
public static class ExperimentArms
{
    /// <summary>
    /// The arm served to a customer by the first experiment that serves one ("experiment/arm", or "" when none),
    /// with that arm's blend weights: <paramref name="serviceDefault"/> (the pipeline's
    /// <see cref="RankingOptions.Blend"/>) overridden by the arm's <see cref="ArmConfig.Ranking"/>, or null when the arm
    /// overrides nothing. Weights are built once per pushed arm config, not per request.
    /// </summary>
    public static Func<string, ArmServing> Serving(IExperimentAssigner assigner, BlendWeights serviceDefault)
    {
        ArgumentNullException.ThrowIfNull(assigner);
        ArgumentNullException.ThrowIfNull(serviceDefault);
        var built = new System.Runtime.CompilerServices.ConditionalWeakTable<ArmRanking, BlendWeights>();
        return customer =>
        {
            foreach (Assignment a in assigner.AssignAll(customer))
                if (a.ServedArm is { } arm)
                    return new ArmServing(a.ExperimentId + "/" + arm,
                        a.ServedRanking is { } ranking ? built.GetValue(ranking, r => BlendOf(r, serviceDefault)) : null);
            return new ArmServing("", null);
        };
    }

    /// <summary><paramref name="baseline"/> with the weights <paramref name="ranking"/> gives replaced.</summary>
    public static BlendWeights BlendOf(ArmRanking ranking, BlendWeights baseline)
    {
        ArgumentNullException.ThrowIfNull(ranking);
        ArgumentNullException.ThrowIfNull(baseline);
        return baseline with
        {
            Similarity = ranking.Similarity ?? baseline.Similarity,
            Click = ranking.Click ?? baseline.Click,
            Purchase = ranking.Purchase ?? baseline.Purchase,
            Margin = ranking.Margin ?? baseline.Margin,
            ReturnRisk = ranking.ReturnRisk ?? baseline.ReturnRisk,
            BackorderRisk = ranking.BackorderRisk ?? baseline.BackorderRisk,
            Boost = ranking.Boost ?? baseline.Boost,
            ProfileMix = ranking.ProfileMix ?? baseline.ProfileMix,
        };
    }

    /// <summary>"experiment/arm" of the first experiment that serves the customer an arm, or "" when none.</summary>
    public static Func<string, string> From(IExperimentAssigner assigner) => customer =>
    {
        foreach (Assignment a in assigner.AssignAll(customer))
            if (a.ServedArm is { } arm) return a.ExperimentId + "/" + arm;
        return "";
    };
}
