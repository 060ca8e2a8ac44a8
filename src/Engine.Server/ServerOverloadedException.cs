namespace Engine.Server;

/// <summary>Thrown by a handler that cannot admit a request now; the client gets Overloaded with the retry delay.</summary>
public sealed class ServerOverloadedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ServerOverloadedException(string message, TimeSpan retryAfter) : base(message) => RetryAfter = retryAfter;

    /// <summary>How long the client should wait.</summary>
    public TimeSpan RetryAfter { get; }
}
