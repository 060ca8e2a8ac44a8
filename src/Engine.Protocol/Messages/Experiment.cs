using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>What an Experiment command does. Explicit and append-only.</summary>
public enum ExperimentAction : byte
{
    /// <summary>Never sent.</summary>
    Unknown = 0,
    /// <summary>Create (or replace) with arms and weights.</summary>
    Create = 1,
    /// <summary>Change the traffic split.</summary>
    SetSplit = 2,
    /// <summary>Stop: everyone gets the control arm.</summary>
    Stop = 3,
    /// <summary>Roll back to the previous configuration.</summary>
    Rollback = 4,
    /// <summary>Read the current state only.</summary>
    Get = 5,
}

/// <summary>Experiment (client → server, admin role).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class ExperimentCommand : IRequestBody
{
    /// <inheritdoc/>
    [MemoryPackOrder(0)] public uint TimeoutMs { get; set; }
    /// <summary>The experiment.</summary>
    [MemoryPackOrder(1)] public string ExperimentId { get; set; } = "";
    /// <summary><see cref="ExperimentAction"/>.</summary>
    [MemoryPackOrder(2)] public byte Action { get; set; }
    /// <summary>Arm names (Create).</summary>
    [MemoryPackOrder(3)] public string[] Arms { get; set; } = [];
    /// <summary>Traffic weight per arm, same order (Create, SetSplit).</summary>
    [MemoryPackOrder(4)] public float[] Weights { get; set; } = [];
    /// <summary>Arm computed and logged but never shown, or null.</summary>
    [MemoryPackOrder(5)] public string? ShadowArm { get; set; }
}

/// <summary>ExperimentResult (server → client).</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class ExperimentResult
{
    /// <summary>The experiment.</summary>
    [MemoryPackOrder(0)] public string ExperimentId { get; set; } = "";
    /// <summary>"running", "stopped", ...</summary>
    [MemoryPackOrder(1)] public string State { get; set; } = "";
    /// <summary>Configuration version after the command.</summary>
    [MemoryPackOrder(2)] public long Version { get; set; }
}
