using System.Net;
using System.Security.Cryptography.X509Certificates;
using Engine.Protocol;

namespace Engine.Server;

/// <summary>Server settings. Defaults are what `engine serve` uses; docs/PROTOCOL.md names the client-visible ones.</summary>
public sealed class ServerOptions
{
    /// <summary>Address to listen on (loopback by default).</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>TCP port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 7070;

    /// <summary>Largest frame body accepted and sent.</summary>
    public int MaxBodyBytes { get; init; } = ProtocolConstants.DefaultMaxBodyBytes;

    /// <summary>Requests in flight per connection before Overloaded.</summary>
    public int MaxInFlightPerConnection { get; init; } = 256;

    /// <summary>Retry delay sent with Overloaded for the per-connection limit.</summary>
    public TimeSpan OverloadRetryAfter { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>A connection that has not said Hello by then is closed.</summary>
    public TimeSpan HelloTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of a request whose TimeoutMs is 0.</summary>
    public TimeSpan DefaultDeadline { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A connection whose output cannot be flushed for this long (client not reading) is closed.</summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long shutdown waits for requests in flight before cancelling them.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Frames queued for a connection's send loop before producers wait.</summary>
    public int SendQueueCapacity { get; init; } = 512;

    /// <summary>Storefront API keys.</summary>
    public IReadOnlyList<string> StorefrontKeys { get; init; } = [];

    /// <summary>Admin API keys (admin keys hold the storefront role too).</summary>
    public IReadOnlyList<string> AdminKeys { get; init; } = [];

    /// <summary>Server certificate; null = plain TCP.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>Name reported in HelloOk and Health.</summary>
    public string ServerName { get; init; } = "engine/1";

    /// <summary>True when no key is configured: only loopback clients are accepted.</summary>
    public bool LoopbackOnly => StorefrontKeys.Count == 0 && AdminKeys.Count == 0;

    /// <summary>
    /// Pause the connection's input pipe at this many unread bytes. It must be above one whole frame
    /// (header + maximum body): a partial frame larger than the pause threshold would stop the writer
    /// before the frame completes, and the reader waits for that frame forever.
    /// </summary>
    internal long InputPauseBytes => FrameHeader.Size + (long)MaxBodyBytes + 64 * 1024;

    /// <summary>Pause the send loop when this many bytes are unsent: bounds memory for a client that does not read.</summary>
    internal long OutputPauseBytes => 2 * (FrameHeader.Size + (long)MaxBodyBytes);
}
