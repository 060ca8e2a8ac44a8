namespace Engine.Protocol;

/// <summary>Bits of the header's flags field. Explicit and append-only; unknown bits are ignored by receivers.</summary>
[Flags]
public enum FrameFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>The last frame of its stream: every request frame and every terminal response frame carries it.</summary>
    End = 1,
}
