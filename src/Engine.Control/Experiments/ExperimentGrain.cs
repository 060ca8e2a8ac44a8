using Engine.Control.Feedback;
using Microsoft.Extensions.Options;

namespace Engine.Control.Experiments;

/// <summary>Persisted state of an experiment.</summary>
[GenerateSerializer]
public sealed class ExperimentState
{
    [Id(0)] public ExperimentConfig? Config { get; set; }
    /// <summary>Arm → model versions that produced feedback for it.</summary>
    [Id(1)] public Dictionary<string, List<string>> ModelVersions { get; set; } = [];
}

/// <summary>One experiment: config and lifecycle (pushed through the registry), and its report.</summary>
internal sealed class ExperimentGrain(
    [PersistentState("experiment", ControlStorage.Name)] IPersistentState<ExperimentState> state,
    IOptions<ControlOptions> options) : Grain, IExperimentGrain
{
    private ExperimentConfig Config => state.State.Config
        ?? throw new UnknownEntityException($"experiment '{this.GetPrimaryKeyString()}' does not exist");

    async Task<ExperimentConfig> IExperimentGrain.Configure(ExperimentConfig config)
    {
        if (config.Id != this.GetPrimaryKeyString())
            throw new ArgumentException($"config for experiment '{config.Id}' sent to experiment '{this.GetPrimaryKeyString()}'");
        config.Validate();
        return await Change(config with { Status = ExperimentStatus.Running });
    }

    Task<ExperimentConfig> IExperimentGrain.Kill() => Change(Config with { Status = ExperimentStatus.Killed });

    Task<ExperimentConfig> IExperimentGrain.RollbackToControl() => Change(Config with { Status = ExperimentStatus.RolledBack });

    private async Task<ExperimentConfig> Change(ExperimentConfig config)
    {
        config = config with { Version = (state.State.Config?.Version ?? 0) + 1 };
        // The registry checks layer overlaps first: a refused config is never stored here.
        await GrainFactory.GetGrain<IExperimentRegistryGrain>(0).Publish(config);
        state.State.Config = config;
        await state.WriteStateAsync();
        return config;
    }

    Task<ExperimentConfig> IExperimentGrain.GetConfig() => Task.FromResult(Config);

    async Task IExperimentGrain.RegisterModelVersion(string arm, string modelVersion)
    {
        var versions = state.State.ModelVersions.TryGetValue(arm, out var v) ? v : state.State.ModelVersions[arm] = [];
        if (versions.Contains(modelVersion)) return;
        versions.Add(modelVersion);
        await state.WriteStateAsync();
    }

    async Task<ExperimentReport> IExperimentGrain.GetReport()
    {
        var config = Config;
        var arms = config.Arms.Select(a => a.Name).ToList();
        if (config.HoldoutBasisPoints > 0) arms.Add(ExperimentAssignment.HoldoutArm);
        var reports = new List<ArmReport>();
        foreach (var arm in arms)
            foreach (var model in state.State.ModelVersions.GetValueOrDefault(arm) ?? [])
            {
                var key = new ArmKey(config.Id, arm, model);
                var shards = await Task.WhenAll(Enumerable.Range(0, options.Value.StatsShards)
                    .Select(s => GrainFactory.GetGrain<IArmStatsGrain>(key.ToGrainKey(s)).GetCounters()));
                reports.Add(ArmReport.From(key, shards.Aggregate(ArmCounters.Zero, (a, b) => a.Add(b))));
            }
        var served = config.Arms.Where(a => !a.IsShadow).ToArray();
        var observed = served.Select(a => reports.Where(r => r.Key.Arm == a.Name).Sum(r => r.Counters.Assignments)).ToArray();
        // After a rollback or kill the split is no longer the configured one: SRM does not apply.
        var srm = config.Status == ExperimentStatus.Running
            ? SrmCheck.Check(observed, served.Select(a => a.WeightBasisPoints).ToArray())
            : new SrmResult(false, 0, served.Length - 1, 0, false);
        return new ExperimentReport(config, reports, srm);
    }

    async Task<IReadOnlyList<DecisionRecord>> IExperimentGrain.Export(string arm, int maxRecords)
    {
        var config = Config;
        if (!config.HasArm(arm) && arm != ExperimentAssignment.HoldoutArm)
            throw new UnknownEntityException($"experiment '{config.Id}' has no arm '{arm}'");
        var records = new List<DecisionRecord>();
        foreach (var model in state.State.ModelVersions.GetValueOrDefault(arm) ?? [])
            for (var s = 0; s < options.Value.StatsShards; s++)
                records.AddRange(await GrainFactory.GetGrain<IArmStatsGrain>(new ArmKey(config.Id, arm, model).ToGrainKey(s)).Export(maxRecords));
        return records.TakeLast(maxRecords).ToArray();
    }

    async Task<IReadOnlyList<LoggedDecision>> IExperimentGrain.ExportDecisions(string? arm, int maxDecisions)
    {
        var id = this.GetPrimaryKeyString();
        IEnumerable<string> arms;
        if (id == ArmKey.NoExperiment)
        {
            if (arm is not null && arm != ArmKey.NoExperiment)
                throw new UnknownEntityException($"traffic outside experiments has no arm '{arm}'");
            arms = [ArmKey.NoExperiment];
        }
        else
        {
            var config = Config;
            if (arm is not null && !config.HasArm(arm) && arm != ExperimentAssignment.HoldoutArm)
                throw new UnknownEntityException($"experiment '{config.Id}' has no arm '{arm}'");
            arms = arm is not null ? [arm] : state.State.ModelVersions.Keys.Order(StringComparer.Ordinal);
        }
        var calls = new List<Task<IReadOnlyList<LoggedDecision>>>();
        foreach (var a in arms)
            foreach (var model in state.State.ModelVersions.GetValueOrDefault(a) ?? [])
                for (var s = 0; s < options.Value.StatsShards; s++)
                    calls.Add(GrainFactory.GetGrain<IArmStatsGrain>(new ArmKey(id, a, model).ToGrainKey(s)).ExportDecisions(maxDecisions));
        var all = (await Task.WhenAll(calls)).SelectMany(d => d)
            .OrderBy(d => d.ServedAt).ThenBy(d => d.RecommendationId, StringComparer.Ordinal).ToArray();
        return all[Math.Max(0, all.Length - maxDecisions)..];
    }
}
