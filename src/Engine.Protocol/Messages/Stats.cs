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
}
