using Engine.Protocol;

namespace Engine.Client;

/// <summary>The server answered a request with an Error frame.</summary>
public class EngineRequestException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EngineRequestException(ErrorCode code, string message) : this(code, $"{code}: {message}", raw: true) { }

    private protected EngineRequestException(ErrorCode code, string fullMessage, bool raw) : base(fullMessage) => Code = code;

    /// <summary>The wire code.</summary>
    public ErrorCode Code { get; }
}

/// <summary>The server answered Overloaded: nothing ran; retry after <see cref="RetryAfter"/>.</summary>
public sealed class EngineOverloadedException : EngineRequestException
{
    /// <summary>Creates the exception.</summary>
    public EngineOverloadedException(TimeSpan retryAfter, string message) : base(ErrorCode.None, $"Overloaded (retry after {retryAfter.TotalMilliseconds:0} ms): {message}", raw: true) => RetryAfter = retryAfter;

    /// <summary>The server's suggested delay.</summary>
    public TimeSpan RetryAfter { get; }
}

/// <summary>The connection failed or was lost before the answer came.</summary>
public sealed class EngineConnectionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EngineConnectionException(string message, Exception? inner = null) : base(message, inner) { }
}
