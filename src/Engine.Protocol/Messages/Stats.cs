using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>Stats (client → server, admin role).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class StatsRequest : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>Only entries whose name starts with this ("server.", "generate."); "" = all.</summary>
    [MemoryPackOrder(1)] public string Prefix { get; set; } = "";
}

/// <summary>One named figure.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class StatEntry
{
    /// <summary>Dotted name ("server.requests", "generate.tokens").</summary>
    [MemoryPackOrder(0)] public string Name { get; set; } = "";
    /// <summary>Value.</summary>
    [MemoryPackOrder(1)] public double Value { get; set; }
}

/// <summary>StatsResult (server → client).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class StatsResult
{
    /// <summary>Entries sorted by name.</summary>
    [MemoryPackOrder(0)] public StatEntry[] Entries { get; set; } = [];
    /// <summary>The control plane's experiments with per-arm figures, sorted by id (empty when the
    /// server has no control plane, or when the request's prefix excludes "control.experiments").
    /// Added after member 0: older clients skip it; a body without it (or with it null) reads as empty.</summary>
    [MemoryPackOrder(1)] public ExperimentStat[] Experiments { get => _experiments; set => _experiments = value ?? []; }
    private ExperimentStat[] _experiments = [];
}

/// <summary>A rate with its 95% confidence interval.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class RateStat
{
    /// <summary>Point estimate.</summary>
    [MemoryPackOrder(0)] public double Value { get; set; }
    /// <summary>Lower end of the 95% interval.</summary>
    [MemoryPackOrder(1)] public double Low { get; set; }
    /// <summary>Upper end of the 95% interval.</summary>
    [MemoryPackOrder(2)] public double High { get; set; }
}

/// <summary>One experiment arm under one model version: counts, reward sum and rates.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class ArmStat
{
    /// <summary>Arm name ("control", "treatment", ...).</summary>
    [MemoryPackOrder(0)] public string Arm { get; set; } = "";
    /// <summary>Model version that served it.</summary>
    [MemoryPackOrder(1)] public string ModelVersion { get; set; } = "";
    /// <summary>Customers assigned (first exposure).</summary>
    [MemoryPackOrder(2)] public long Assignments { get; set; }
    /// <summary>Recommendations shown.</summary>
    [MemoryPackOrder(3)] public long Exposures { get; set; }
    /// <summary>Clicks on shown recommendations.</summary>
    [MemoryPackOrder(4)] public long Clicks { get; set; }
    /// <summary>Adds to cart following one.</summary>
    [MemoryPackOrder(5)] public long Carts { get; set; }
    /// <summary>Purchases following one.</summary>
    [MemoryPackOrder(6)] public long Purchases { get; set; }
    /// <summary>Returns following one.</summary>
    [MemoryPackOrder(7)] public long Returns { get; set; }
    /// <summary>Sum of rewards (configured value per kind; returns negative).</summary>
    [MemoryPackOrder(8)] public double RewardSum { get; set; }
    /// <summary>Clicks per exposure (Wilson interval).</summary>
    [MemoryPackOrder(9)] public RateStat ClickRate { get; set; } = new();
    /// <summary>Carts per exposure (Wilson interval).</summary>
    [MemoryPackOrder(10)] public RateStat CartRate { get; set; } = new();
    /// <summary>Purchases per exposure (Wilson interval).</summary>
    [MemoryPackOrder(11)] public RateStat PurchaseRate { get; set; } = new();
    /// <summary>Returns per purchase (Wilson interval).</summary>
    [MemoryPackOrder(12)] public RateStat ReturnRate { get; set; } = new();
    /// <summary>Mean reward per exposure (normal interval).</summary>
    [MemoryPackOrder(13)] public RateStat RewardPerExposure { get; set; } = new();
}

/// <summary>One experiment's status, sample-ratio-mismatch check and arms.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class ExperimentStat
{
    /// <summary>Experiment id.</summary>
    [MemoryPackOrder(0)] public string Id { get; set; } = "";
    /// <summary>"Running", "Killed", "RolledBack", ... (the control plane's status name).</summary>
    [MemoryPackOrder(1)] public string Status { get; set; } = "";
    /// <summary>Configuration version.</summary>
    [MemoryPackOrder(2)] public long ConfigVersion { get; set; }
    /// <summary>Whether enough assignments were seen to run the SRM check.</summary>
    [MemoryPackOrder(3)] public bool SrmChecked { get; set; }
    /// <summary>Assignments deviate from the configured split (chi-square above the critical value).</summary>
    [MemoryPackOrder(4)] public bool SrmMismatch { get; set; }
    /// <summary>Chi-square statistic of the SRM check.</summary>
    [MemoryPackOrder(5)] public double SrmChiSquare { get; set; }
    /// <summary>Its critical value.</summary>
    [MemoryPackOrder(6)] public double SrmCritical { get; set; }
    /// <summary>Per arm and model version.</summary>
    [MemoryPackOrder(7)] public ArmStat[] Arms { get => _arms; set => _arms = value ?? []; }
    private ArmStat[] _arms = [];
}
