using Engine.Protocol;
using Engine.Server.Handlers;

namespace Engine.Server;

/// <summary>
/// What the host wires behind each operation. A null handler means the build or configuration has
/// nothing to serve it with: the request is answered <see cref="ErrorCode.NotAvailable"/> with the
/// matching message below, and the capability bit is not advertised.
/// </summary>
public sealed class ServerHandlers
{
    /// <summary>Error message for Recommend without a ranking.</summary>
    public const string NoRanking = "ranking not available in this build";
    /// <summary>Error message for Generate without a model.</summary>
    public const string NoGenerator = "no generator model configured";
    /// <summary>Error message for Events without a sink.</summary>
    public const string NoEventSink = "no event sink configured";
    /// <summary>Error message for CatalogUpsert without a catalog.</summary>
    public const string NoCatalog = "catalog admin not available in this build";
    /// <summary>Error message for Experiment without a control plane.</summary>
    public const string NoExperiments = "experiments not available in this build";
    /// <summary>Error message for FeedbackExport without a control plane.</summary>
    public const string NoFeedbackExport = "feedback export not available in this build";

    /// <summary>Recommend.</summary>
    public IRecommendHandler? Recommend { get; init; }
    /// <summary>Generate.</summary>
    public IGenerateHandler? Generate { get; init; }
    /// <summary>Events.</summary>
    public IEventSink? Events { get; init; }
    /// <summary>CatalogUpsert.</summary>
    public ICatalogAdmin? Catalog { get; init; }
    /// <summary>Experiment.</summary>
    public IExperimentAdmin? Experiments { get; init; }
    /// <summary>FeedbackExport.</summary>
    public IFeedbackExport? FeedbackExport { get; init; }
    /// <summary>Extra figures for Stats besides the server's own.</summary>
    public IReadOnlyList<IStatsSource> StatsSources { get; init; } = [];

    /// <summary>The capability bits these handlers offer.</summary>
    public Capabilities Capabilities =>
        (Recommend is null ? 0 : Capabilities.Recommend)
        | (Generate is null ? 0 : Capabilities.Generate)
        | (Events is null ? 0 : Capabilities.Events)
        | (Catalog is null ? 0 : Capabilities.CatalogAdmin)
        | (Experiments is null ? 0 : Capabilities.Experiments)
        | (FeedbackExport is null ? 0 : Capabilities.FeedbackExport)
        | Capabilities.Stats;
}
