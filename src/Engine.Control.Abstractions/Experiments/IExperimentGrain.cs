using Engine.Control.Feedback;

namespace Engine.Control.Experiments;

/// <summary>One experiment (key: experiment id): its config, lifecycle and report.</summary>
public interface IExperimentGrain : IGrainWithStringKey
{
    /// <summary>Creates or replaces the config (status Running, version +1) and pushes it to servers.</summary>
    /// <exception cref="ArgumentException">The config breaks a rule, or its range overlaps another
    /// live experiment of the same layer.</exception>
    Task<ExperimentConfig> Configure(ExperimentConfig config);

    /// <summary>Kill switch: nobody is enrolled from the next assignment on.</summary>
    /// <exception cref="UnknownEntityException">No such experiment.</exception>
    Task<ExperimentConfig> Kill();

    /// <summary>Instant rollback: every enrolled customer is served control.</summary>
    /// <exception cref="UnknownEntityException">No such experiment.</exception>
    Task<ExperimentConfig> RollbackToControl();

    /// <summary>The current config.</summary>
    /// <exception cref="UnknownEntityException">No such experiment.</exception>
    Task<ExperimentConfig> GetConfig();

    /// <summary>Notes that <paramref name="arm"/> produced feedback under <paramref name="modelVersion"/>
    /// (so reports know which stats grains to read).</summary>
    Task RegisterModelVersion(string arm, string modelVersion);

    /// <summary>Per arm and model version: counts, rates with confidence intervals, rewards; and
    /// the SRM check over assignments of the served arms.</summary>
    /// <exception cref="UnknownEntityException">No such experiment.</exception>
    Task<ExperimentReport> GetReport();

    /// <summary>Logged (context, action, probability, reward) records of one arm, for retraining.</summary>
    /// <exception cref="UnknownEntityException">No such experiment or arm.</exception>
    Task<IReadOnlyList<DecisionRecord>> Export(string arm, int maxRecords);

    /// <summary>Logged recommendations of one arm (null: every arm, the holdout and the shadow arm),
    /// every model version, with rewards per kind: at most <paramref name="maxDecisions"/>, the latest
    /// of each stats shard, ordered by serving time. The key <see cref="ArmKey.NoExperiment"/> exports
    /// traffic served outside any experiment (it needs no config).</summary>
    /// <exception cref="UnknownEntityException">No such experiment or arm.</exception>
    Task<IReadOnlyList<LoggedDecision>> ExportDecisions(string? arm, int maxDecisions);
}

/// <summary>An experiment's figures.</summary>
[GenerateSerializer, Immutable]
public sealed record ExperimentReport(
    [property: Id(0)] ExperimentConfig Config,
    [property: Id(1)] IReadOnlyList<ArmReport> Arms,
    [property: Id(2)] SrmResult Srm);

/// <summary>All experiment configs at one registry version.</summary>
[GenerateSerializer, Immutable]
public sealed record ExperimentSnapshot(
    [property: Id(0)] long Version,
    [property: Id(1)] IReadOnlyDictionary<string, ExperimentConfig> Experiments);

/// <summary>Receives config pushes (a server's local assignment cache).</summary>
public interface IExperimentObserver : IGrainObserver
{
    /// <summary>The registry changed; <paramref name="snapshot"/> is complete.</summary>
    void OnExperimentsChanged(ExperimentSnapshot snapshot);
}

/// <summary>All experiment configs (key 0); pushes every change to subscribed servers.</summary>
public interface IExperimentRegistryGrain : IGrainWithIntegerKey
{
    /// <summary>Stores <paramref name="config"/> after checking its layer range against the other
    /// live experiments of its layer; pushes the new snapshot.</summary>
    Task<long> Publish(ExperimentConfig config);

    /// <summary>Every config.</summary>
    [AlwaysInterleave]
    Task<ExperimentSnapshot> GetSnapshot();

    /// <summary>Subscribes (or renews) an observer; subscriptions expire unless renewed.</summary>
    Task Subscribe(IExperimentObserver observer);

    /// <summary>Ends a subscription.</summary>
    Task Unsubscribe(IExperimentObserver observer);
}

/// <summary>Local, grain-call-free assignment from the pushed configs: what the server calls per request.</summary>
public interface IExperimentAssigner
{
    /// <summary>The registry version the assigner holds.</summary>
    long Version { get; }

    /// <summary>Assigns <paramref name="customerId"/> in one experiment.</summary>
    /// <exception cref="UnknownEntityException">No such experiment in the pushed config.</exception>
    Assignment Assign(string experimentId, string customerId);

    /// <summary>Assignments in every experiment the customer is enrolled in.</summary>
    IReadOnlyList<Assignment> AssignAll(string customerId);
}
