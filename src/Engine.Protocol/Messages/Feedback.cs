using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>
/// FeedbackExport (client → server, admin role): one page of the logged recommendations of an experiment (or of
/// traffic outside experiments) with the rewards joined to them, for retraining the scoring heads
/// (docs/FEEDBACK-LOG.md). Page with <see cref="Offset"/> until <see cref="FeedbackExportResult.More"/> is false.
/// </summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class FeedbackExportRequest : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>The experiment; "" = recommendations served outside any experiment.</summary>
    [MemoryPackOrder(1)] public string ExperimentId { get; set; } = "";
    /// <summary>One arm, or null for every arm (holdout and shadow included).</summary>
    [MemoryPackOrder(2)] public string? Arm { get; set; }
    /// <summary>Decisions to skip (the previous page's <see cref="FeedbackExportResult.NextOffset"/>).</summary>
    [MemoryPackOrder(3)] public int Offset { get; set; }
    /// <summary>Most decisions in this page; 0 = the server's default. The server may return fewer to keep the
    /// answer under its maximum body size.</summary>
    [MemoryPackOrder(4)] public int MaxDecisions { get; set; }
}

/// <summary>FeedbackExportResult (server → client): one page, oldest served first.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class FeedbackExportResult
{
    /// <summary>The decisions of this page.</summary>
    [MemoryPackOrder(0)] public FeedbackDecision[] Decisions { get; set; } = [];
    /// <summary>Offset of the next page.</summary>
    [MemoryPackOrder(1)] public int NextOffset { get; set; }
    /// <summary>Whether decisions remain after this page.</summary>
    [MemoryPackOrder(2)] public bool More { get; set; }
    /// <summary>Decisions logged in all (as of this page).</summary>
    [MemoryPackOrder(3)] public int Total { get; set; }
}

/// <summary>One logged recommendation (a line of the feedback log).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class FeedbackDecision
{
    /// <summary>RecommendResult.RecommendationId of the list.</summary>
    [MemoryPackOrder(0)] public string RecommendationId { get; set; } = "";
    /// <summary>The arm ("" outside experiments).</summary>
    [MemoryPackOrder(1)] public string Arm { get; set; } = "";
    /// <summary>RecommendResult.ModelVersion of the list.</summary>
    [MemoryPackOrder(2)] public string ModelVersion { get; set; } = "";
    /// <summary>The context features the ranking saw (JSON, docs/FEEDBACK-LOG.md).</summary>
    [MemoryPackOrder(3)] public string Context { get; set; } = "";
    /// <summary>When it was served, Unix milliseconds (server clock).</summary>
    [MemoryPackOrder(4)] public long ServedUnixMs { get; set; }
    /// <summary>When a reward was last joined to it, Unix milliseconds; 0 = none yet.</summary>
    [MemoryPackOrder(5)] public long UpdatedUnixMs { get; set; }
    /// <summary>A shadow arm's list: computed and logged, never shown.</summary>
    [MemoryPackOrder(6)] public bool Shadow { get; set; }
    /// <summary>Shown products by position.</summary>
    [MemoryPackOrder(7)] public FeedbackAction[] Actions { get; set; } = [];
}

/// <summary>One shown product and what the shopper did with it.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class FeedbackAction
{
    /// <summary>The product.</summary>
    [MemoryPackOrder(0)] public string ProductId { get; set; } = "";
    /// <summary>1-based position in the list.</summary>
    [MemoryPackOrder(1)] public int Position { get; set; }
    /// <summary>Probability the policy gave it (propensity).</summary>
    [MemoryPackOrder(2)] public float Probability { get; set; }
    /// <summary>Clicks.</summary>
    [MemoryPackOrder(3)] public int Clicks { get; set; }
    /// <summary>Add-to-carts.</summary>
    [MemoryPackOrder(4)] public int Carts { get; set; }
    /// <summary>Purchases.</summary>
    [MemoryPackOrder(5)] public int Purchases { get; set; }
    /// <summary>Returns.</summary>
    [MemoryPackOrder(6)] public int Returns { get; set; }
    /// <summary>Sum of their rewards.</summary>
    [MemoryPackOrder(7)] public double Reward { get; set; }
}
