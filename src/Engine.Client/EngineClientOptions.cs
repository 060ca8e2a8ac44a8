using System.IO.Pipelines;
using System.Net.Security;

namespace Engine.Client;

/// <summary>How <see cref="EngineClient"/> reaches the server.</summary>
public sealed class EngineClientOptions
{
    /// <summary>Server host name or address.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Server port.</summary>
    public int Port { get; init; } = 7070;

    /// <summary>API key sent in Hello ("" for a keyless loopback server).</summary>
    public string ApiKey { get; init; } = "";

    /// <summary>Name sent in Hello, for the server's logs.</summary>
    public string ClientName { get; init; } = "engine-client/1";

    /// <summary>Connect over TLS.</summary>
    public bool UseTls { get; init; }

    /// <summary>TLS server name (defaults to <see cref="Host"/>).</summary>
    public string? TlsTargetHost { get; init; }

    /// <summary>Certificate check; null = the system's default validation.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }

    /// <summary>Time for connect + TLS + Hello.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>First reconnect delay; doubles per failed attempt up to <see cref="ReconnectMaxDelay"/>, with jitter.</summary>
    public TimeSpan ReconnectBaseDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Longest delay between reconnect attempts.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Connection attempts per call before it fails.</summary>
    public int MaxConnectAttempts { get; init; } = 5;

    /// <summary>Events per Events frame in <see cref="EngineClient.SendEventsAsync"/>.</summary>
    public int EventBatchSize { get; init; } = 500;

    /// <summary>Default deadline sent with requests whose own TimeoutMs is 0 (0 = the server's default).</summary>
    public uint DefaultTimeoutMs { get; init; }

    /// <summary>Opens the byte transport instead of a socket (in-process tests). Null = TCP.</summary>
    public Func<CancellationToken, ValueTask<IDuplexPipe>>? TransportFactory { get; init; }
}
