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
        // Only the vector (ICustomerSessionGrain.GetProfileVector): not the recent items and cart a Recommend does not use.
        float[] profile = (await grains.Session(customerId).GetProfileVector().ConfigureAwait(false)).Value;
        return profile is { Length: > 0 } ? profile : null;
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
        System.Runtime.CompilerServices.ConditionalWeakTable<ArmRanking, BlendWeights>.CreateValueCallback build = r => BlendOf(r, serviceDefault);
        var labels = new ArmLabels();
        // Per Recommend: an index loop (no enumerator), the delegate above (not one per call), labels built once per arm.
        return customer =>
        {
            IReadOnlyList<Assignment> all = assigner.AssignAll(customer);
            for (int i = 0; i < all.Count; i++)
                if (all[i] is { ServedArm: { } arm } a)
                    return new ArmServing(labels.Of(a.ExperimentId, arm), a.ServedRanking is { } ranking ? built.GetValue(ranking, build) : null);
            return new ArmServing("", null);
        };
    }

    /// <summary>"experiment/arm" strings, one instance per arm (bounded: cleared past 1,024 arms). Thread-safe.</summary>
    private sealed class ArmLabels
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), string> _labels = new();

        public string Of(string experiment, string arm)
        {
            if (_labels.TryGetValue((experiment, arm), out string? label)) return label;
            if (_labels.Count >= 1024) _labels.Clear();
            return _labels[(experiment, arm)] = experiment + "/" + arm;
        }
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
    public static Func<string, string> From(IExperimentAssigner assigner)
    {
        ArgumentNullException.ThrowIfNull(assigner);
        var labels = new ArmLabels();
        return customer =>
        {
            IReadOnlyList<Assignment> all = assigner.AssignAll(customer);
            for (int i = 0; i < all.Count; i++)
                if (all[i] is { ServedArm: { } arm } a) return labels.Of(a.ExperimentId, arm);
            return "";
        };
    }
}
