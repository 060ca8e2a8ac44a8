using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Engine.Control.Tests.Redis;

/// <summary>The Redis server the tests use: ENGINE_TEST_REDIS (host:port), which .ci/run starts.</summary>
internal static class RedisServer
{
    public static string Connection => Environment.GetEnvironmentVariable("ENGINE_TEST_REDIS") ?? "127.0.0.1:6390";

    private static readonly Lazy<string?> Why = new(() => Probe(Connection));

    /// <summary>Null when reachable, else the reason the Redis tests skip.</summary>
    public static string? Unreachable => Why.Value;

    /// <summary>Whether a redis-server binary is on PATH (tests that run a private server need it).</summary>
    public static bool BinaryAvailable => Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(Path.Combine(d, "redis-server")));

    private static string? Probe(string connection)
    {
        var parts = connection.Split(':');
        try
        {
            using var client = new TcpClient();
            if (!client.ConnectAsync(parts[0], int.Parse(parts[1])).Wait(TimeSpan.FromSeconds(1)))
                throw new TimeoutException();
            return null;
        }
        catch (Exception)
        {
            return $"no Redis server at {connection}: set ENGINE_TEST_REDIS=host:port or run .ci/run, which starts one";
        }
    }

    /// <summary>A free TCP port on loopback.</summary>
    public static int FreePort() => Engine.Tests.Shared.TestPorts.Free();
}

/// <summary>A test that needs the shared Redis server; skips with the reason when it is unreachable.</summary>
public sealed class RequiresRedisFactAttribute : FactAttribute
{
    public RequiresRedisFactAttribute()
    {
        if (RedisServer.Unreachable is { } why) Skip = why;
    }
}

/// <summary>A test that runs its own redis-server (to stop and restart it); skips without the binary.</summary>
public sealed class RequiresRedisBinaryFactAttribute : FactAttribute
{
    public RequiresRedisBinaryFactAttribute()
    {
        if (!RedisServer.BinaryAvailable) Skip = "redis-server is not on PATH (.ci/run installs it with apt)";
    }
}

/// <summary>A private redis-server with an append-only file fsynced on every write, so a SIGKILL
/// loses nothing it acknowledged.</summary>
internal sealed class PrivateRedis : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-redis-").FullName;
    private Process? _process;

    public int Port { get; } = RedisServer.FreePort();
    public string Connection => $"127.0.0.1:{Port}";

    public void Start()
    {
        _process = Process.Start(new ProcessStartInfo("redis-server",
            $"--port {Port} --bind 127.0.0.1 --save \"\" --appendonly yes --appendfsync always --dir {_dir}")
        { RedirectStandardOutput = true, UseShellExecute = false })!;
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        for (var i = 0; i < 100; i++)
        {
            if (RedisServerProbe()) return;
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"redis-server did not start on port {Port}");
    }

    /// <summary>SIGKILL: no shutdown save; only what the append-only file already holds survives.</summary>
    public void Kill()
    {
        _process?.Kill();
        _process?.WaitForExit();
        _process = null;
    }

    private bool RedisServerProbe()
    {
        try
        {
            using var c = new TcpClient();
            return c.ConnectAsync(IPAddress.Loopback, Port).Wait(200) && c.Connected;
        }
        catch (Exception) { return false; }
    }

    public void Dispose()
    {
        Kill();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
