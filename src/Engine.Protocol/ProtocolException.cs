namespace Engine.Protocol;

/// <summary>A protocol violation or a failed request, with the wire <see cref="ErrorCode"/> that describes it.</summary>
public class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException(ErrorCode code, string message, Exception? inner = null) : base(message, inner) => Code = code;

    /// <summary>The wire code.</summary>
    public ErrorCode Code { get; }
}
