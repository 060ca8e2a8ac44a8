using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>Catalog writes (admin role).</summary>
public interface ICatalogAdmin
{
    /// <summary>Inserts or replaces products and bumps the catalog version.</summary>
    ValueTask<CatalogUpsertResult> UpsertAsync(CatalogUpsertRequest request, CancellationToken cancellationToken);
}

/// <summary>Experiment commands (admin role).</summary>
public interface IExperimentAdmin
{
    /// <summary>Runs one command.</summary>
    ValueTask<ExperimentResult> ExecuteAsync(ExperimentCommand command, CancellationToken cancellationToken);
}

/// <summary>The logged recommendations and rewards, for retraining (admin role; docs/FEEDBACK-LOG.md).</summary>
public interface IFeedbackExport
{
    /// <summary>Answers one page.</summary>
    ValueTask<FeedbackExportResult> ExportAsync(FeedbackExportRequest request, CancellationToken cancellationToken);
}

/// <summary>A source of named figures for Stats (the scheduler, the ranking, the control plane).</summary>
public interface IStatsSource
{
    /// <summary>Adds this source's current figures to <paramref name="entries"/>.</summary>
    void Collect(ICollection<StatEntry> entries);

    /// <summary>Adds experiments with per-arm figures (the control plane's); most sources have none.</summary>
    void CollectExperiments(ICollection<ExperimentStat> experiments) { }
}
