using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using Xunit.Abstractions;
using Engine.Client;
using Engine.Control.Catalog;
using Engine.Control.Sessions;
using ProtocolKind = Engine.Protocol.Messages.EventKind;
using ShopperEvent = Engine.Protocol.Messages.ShopperEvent;

namespace Engine.Control.Tests.Redis;

/// <summary>A whole `engine serve --redis` process is killed with SIGKILL (no shutdown code runs)
/// while clients send events over the wire; a silo started afterwards on the same Redis finds every
/// event the killed process acknowledged.</summary>
[Collection(SiloCollection.Name)]
public class SiloProcessKillTests(ITestOutputHelper output)
{
    private const int Senders = 4;
    private const int CustomersPerSender = 8;
    private const string Cluster = "engine"; // `engine serve`'s cluster and service id

    [RequiresEngineServeFact]
    public async Task Every_event_acknowledged_by_a_SIGKILLed_serve_process_is_in_redis_for_the_next_silo()
    {
        using var redis = new PrivateRedis(); // a fresh store each run; fsync on every write
        redis.Start();
        var product = TestData.Id("p");
        await using (var setup = await TestSilo.StartAsync(redis.Connection, Cluster))
            await setup.Grains.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Boot", [1, 0, 0]));

        var siloPort = RedisServer.FreePort();
        var serve = ServeProcess.Start(redis.Connection, siloPort);
        var acked = new ConcurrentDictionary<string, int>();
        var sent = new ConcurrentDictionary<string, int>();
        try
        {
            await serve.WaitListeningAsync(TimeSpan.FromSeconds(60));
            using var stopSending = new CancellationTokenSource();
            var senders = Enumerable.Range(0, Senders).Select(s => Task.Run(() => SendAsync(serve.Port, s, product, acked, sent, stopSending.Token))).ToArray();
            // Kill once traffic is flowing: at least a few acknowledged batches per sender.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (acked.Values.Sum() < Senders * CustomersPerSender * 5 && DateTime.UtcNow < deadline && !senders.Any(t => t.IsCompleted))
                await Task.Delay(20);
            serve.Kill(); // SIGKILL, while batches are in flight
            await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(30));
            stopSending.Cancel();
        }
        finally
        {
            serve.Kill();
        }
        Assert.True(acked.Values.Sum() >= Senders * CustomersPerSender, $"too little traffic before the kill: {acked.Values.Sum()} events acknowledged; serve said:\n{serve.Output}");

        output.WriteLine($"acknowledged {acked.Values.Sum()} of {sent.Values.Sum()} events sent before the SIGKILL");

        // The next silo takes the killed one's port: it declares that incarnation dead at once.
        await using var next = await TestSilo.StartAsync(redis.Connection, Cluster, siloPort: siloPort);
        foreach (var (customer, count) in acked)
        {
            var applied = (await next.Grains.GetGrain<ICustomerSessionGrain>(customer).GetProfile()).EventsApplied;
            // Acknowledged ⊆ stored ⊆ sent: an unacknowledged in-flight batch may or may not have landed.
            Assert.InRange(applied, count, sent[customer]);
        }
    }

    [RequiresEngineServeFact]
    public async Task Serve_with_an_unreachable_redis_exits_with_one_clear_error_line()
    {
        var closed = RedisServer.FreePort(); // nothing listens there
        var serve = ServeProcess.Start($"127.0.0.1:{closed}", RedisServer.FreePort());
        try
        {
            var exit = await serve.WaitExitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(1, exit); // ExitCodes.BadInput
            Assert.Contains(serve.Lines, l => l.StartsWith($"error: --redis 127.0.0.1:{closed}: Redis is not reachable", StringComparison.Ordinal));
        }
        finally
        {
            serve.Kill();
        }
    }

    /// <summary>One client: batches of one view per customer, each event distinct (its time is a
    /// counter, and the server derives event ids from content); counts what was acknowledged.</summary>
    private static async Task SendAsync(int port, int sender, string product, ConcurrentDictionary<string, int> acked,
        ConcurrentDictionary<string, int> sent, CancellationToken stop)
    {
        var customers = Enumerable.Range(0, CustomersPerSender).Select(c => $"kill-s{sender}-c{c}").ToArray();
        var time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        try
        {
            await using var client = await EngineClient.ConnectAsync(new EngineClientOptions { Port = port }, stop);
            while (!stop.IsCancellationRequested)
            {
                time++;
                var batch = customers.Select(c => new ShopperEvent { CustomerId = c, Kind = (byte)ProtocolKind.View, ProductId = product, TimeUnixMs = time }).ToArray();
                foreach (var c in customers) sent.AddOrUpdate(c, 1, (_, n) => n + 1);
                var accepted = await client.SendEventsAsync(batch, stop);
                Assert.Equal(batch.Length, accepted);
                foreach (var c in customers) acked.AddOrUpdate(c, 1, (_, n) => n + 1);
            }
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            // The connection died with the process: the batch in flight is not acknowledged.
        }
    }

    /// <summary>`engine serve` (the built engine.dll) as a child process on free ports.</summary>
    private sealed class ServeProcess
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private ServeProcess(Process process, int port)
        {
            _process = process;
            Port = port;
        }

        public int Port { get; }
        public string Output => string.Join('\n', _lines);

        public static ServeProcess Start(string redis, int siloPort)
        {
            var port = RedisServer.FreePort();
            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { EngineServe.Path!, "serve", "--port", $"{port}", "--redis", redis, "--silo-port", $"{siloPort}",
                         "--gateway-port", $"{RedisServer.FreePort()}", "--demo-catalog", "0" })
                info.ArgumentList.Add(arg);
            info.Environment.Remove("ENGINE_API_KEY"); // loopback without keys
            info.Environment.Remove("ENGINE_ADMIN_KEY");
            var serve = new ServeProcess(Process.Start(info)!, port);
            serve._process.ErrorDataReceived += (_, e) => serve.OnLine(e.Data);
            serve._process.OutputDataReceived += (_, e) => serve.OnLine(e.Data);
            serve._process.BeginErrorReadLine();
            serve._process.BeginOutputReadLine();
            serve._process.EnableRaisingEvents = true;
            serve._process.Exited += (_, _) => serve._listening.TrySetException(new InvalidOperationException($"engine serve exited early:\n{serve.Output}"));
            return serve;
        }

        private void OnLine(string? line)
        {
            if (line is null) return;
            _lines.Enqueue(line);
            if (line.Contains("listening on")) _listening.TrySetResult();
        }

        public IEnumerable<string> Lines => _lines;

        public async Task<int> WaitExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            await _process.WaitForExitAsync(cts.Token);
            return _process.ExitCode;
        }

        public async Task WaitListeningAsync(TimeSpan timeout)
        {
            try { await _listening.Task.WaitAsync(timeout); }
            catch (TimeoutException) { throw new TimeoutException($"engine serve did not listen within {timeout}:\n{Output}"); }
        }

        /// <summary>SIGKILL (Process.Kill on Unix): no drain, no graceful silo shutdown.</summary>
        public void Kill()
        {
            if (_process.HasExited) return;
            _process.Kill();
            _process.WaitForExit();
        }
    }
}

/// <summary>Where the built `engine` is (baked in by the test project) and whether it and redis-server are there.</summary>
internal static class EngineServe
{
    public static string? Path => typeof(EngineServe).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "EngineCli")?.Value;
}

/// <summary>A test that runs `engine serve` against its own redis-server; skips without either.</summary>
public sealed class RequiresEngineServeFactAttribute : FactAttribute
{
    public RequiresEngineServeFactAttribute()
    {
        if (!RedisServer.BinaryAvailable) Skip = "redis-server is not on PATH (.ci/run installs it with apt)";
        else if (EngineServe.Path is not { } path || !File.Exists(path)) Skip = $"engine.dll not built at {EngineServe.Path} (build src/Engine.Cli)";
    }
}
