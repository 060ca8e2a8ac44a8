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
    /// <summary>"experiment/arm" of the first experiment that serves the customer an arm, or "" when none.</summary>
    public static Func<string, string> From(IExperimentAssigner assigner) => customer =>
    {
        foreach (Assignment a in assigner.AssignAll(customer))
            if (a.ServedArm is { } arm) return a.ExperimentId + "/" + arm;
        return "";
    };
}
