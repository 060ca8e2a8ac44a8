using MemoryPack;

namespace Engine.Protocol.Messages;

/// <summary>Error (server → client): terminal answer to the request on this stream, or on stream 0 a connection error.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class ErrorBody
{
    /// <summary>The <see cref="ErrorCode"/>.</summary>
    [MemoryPackOrder(0)] public ushort Code { get; set; }
    /// <summary>One human-readable line.</summary>
    [MemoryPackOrder(1)] public string Message { get; set; } = "";

    /// <summary>The code as the enum.</summary>
    [MemoryPackIgnore] public ErrorCode ErrorCode => (ErrorCode)Code;

    /// <summary>Creates an error body.</summary>
    public static ErrorBody Of(ErrorCode code, string message) => new() { Code = (ushort)code, Message = message };
}

/// <summary>Overloaded (server → client): the request was not admitted; nothing of it ran.</summary>
[MemoryPackable(GenerateType.VersionTolerant)]
public sealed partial class OverloadedBody
{
    /// <summary>Milliseconds the client should wait before retrying.</summary>
    [MemoryPackOrder(0)] public uint RetryAfterMs { get; set; }
    /// <summary>Which limit was hit ("connection in-flight limit", "generation queue full").</summary>
    [MemoryPackOrder(1)] public string Message { get; set; } = "";
}
