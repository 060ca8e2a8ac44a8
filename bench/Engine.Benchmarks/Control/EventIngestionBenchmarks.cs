using BenchmarkDotNet.Attributes;
using Engine.Control;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using StackExchange.Redis;

namespace Engine.Benchmarks.Control;

/// <summary>Event ingestion through one silo (issue 6 target: ≥ 50,000 events/s with batching).
/// Events enter through an <see cref="IEventSink"/> in the silo's process, as `engine serve` calls it:
/// <see cref="SinkKind.Journal"/> is the silo's registered sink (cross-session group commit: one
/// journal write per call, acknowledged then, sessions apply and checkpoint afterwards);
/// <see cref="SinkKind.Grain"/> is the earlier path (<see cref="GrainEventSink"/>: one session call and
/// one state write per customer before the acknowledgement). Storage: in memory, or Redis when
/// ENGINE_BENCH_REDIS=host:port names a server (run it with appendfsync always for the durable
/// figure). Each view event also reads the product's embedding (cached per silo).</summary>
[MemoryDiagnoser]
[InProcess, WarmupCount(2), IterationCount(6)] // in process: a separate build times out on this 2-core machine
public class EventIngestionBenchmarks
{
    private const int Events = 16_384;
    private const int Customers = 512;
    private const int Products = 100;
    private IHost _host = null!;
    private IEventSink _sink = null!;
    private IServer? _redisServer;

    /// <summary>Which sink takes the events.</summary>
    public enum SinkKind
    {
        /// <summary><see cref="GrainEventSink"/>: a session call and a session state write per customer per call.</summary>
        Grain,
        /// <summary>The silo's journaling sink: one journal write per call for all its customers.</summary>
        Journal,
    }

    /// <summary>Events per call per customer: 1 is one call per event; larger is the batched path;
    /// <see cref="Mixed"/> is what a server receives from a storefront: batches of one event for
    /// each of the 512 customers (one event per shopper per batch).</summary>
    [Params(1, 32, Mixed)]
    public int BatchSize { get; set; }

    /// <summary><see cref="BatchSize"/> value for server-style batches across customers.</summary>
    public const int Mixed = -1;

    [Params(SinkKind.Grain, SinkKind.Journal)]
    public SinkKind Sink { get; set; }

    /// <summary>"memory", plus "redis" when ENGINE_BENCH_REDIS is set.</summary>
    [ParamsSource(nameof(Stores))]
    public string Store { get; set; } = "memory";

    public static IEnumerable<string> Stores => RedisConnection is null ? ["memory"] : ["memory", "redis"];

    private static string? RedisConnection => Environment.GetEnvironmentVariable("ENGINE_BENCH_REDIS") is { Length: > 0 } r ? r : null;

    [GlobalSetup]
    public void Setup()
    {
        // The settle below must outlast the age bound of the checkpoint policy: 5 s, as when these figures were first taken.
        _host = BenchSilo.Start(Products, redis: Store == "redis" ? RedisConnection : null, configure: c => c.SessionCheckpointInterval = TimeSpan.FromSeconds(5));
        _sink = Sink == SinkKind.Journal
            ? _host.Services.GetRequiredService<IEventSink>()
            : new GrainEventSink(_host.Services.GetRequiredService<IGrainFactory>());
        if (Store == "redis")
        {
            var mux = ConnectionMultiplexer.Connect(RedisConnection + ",allowAdmin=true"); // INFO cpu
            _redisServer = mux.GetServer(mux.GetEndPoints()[0]);
        }
    }

    // Wall time on this shared 2-core machine swings with other jobs' load; the process's CPU time
    // per event does much less, so it is printed beside BenchmarkDotNet's table: the median over the
    // iterations, and the total from the second iteration to the end plus a settle period (the
    // journal's sessions apply after the acknowledgement and checkpoint every 5 s: the total counts
    // that work, the per-iteration median may miss it). For Redis, redis-server's CPU likewise.
    private readonly List<double> _cpuPerEvent = [];
    private TimeSpan _cpuAtStart, _cpuTotalStart;
    private double _redisAtStart, _redisTotalStart;
    private int _iterations;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(6); // > SessionCheckpointInterval (5 s)

    private static TimeSpan ProcessCpu => System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;

    private double RedisCpuSeconds()
    {
        if (_redisServer is null) return 0;
        var cpu = _redisServer.Info("cpu").SelectMany(g => g).ToDictionary(kv => kv.Key, kv => kv.Value);
        return double.Parse(cpu["used_cpu_sys"], System.Globalization.CultureInfo.InvariantCulture)
             + double.Parse(cpu["used_cpu_user"], System.Globalization.CultureInfo.InvariantCulture);
    }

    [IterationSetup]
    public void StartCpuClock()
    {
        _cpuAtStart = ProcessCpu;
        _redisAtStart = RedisCpuSeconds();
        if (_iterations++ == 1) (_cpuTotalStart, _redisTotalStart) = (_cpuAtStart, _redisAtStart);
    }

    [IterationCleanup]
    public void StopCpuClock() =>
        _cpuPerEvent.Add((ProcessCpu - _cpuAtStart).TotalMicroseconds / Events);

    [GlobalCleanup]
    public void Cleanup()
    {
        Thread.Sleep(Settle);
        var counted = (_iterations - 1) * (double)Events;
        var total = (ProcessCpu - _cpuTotalStart).TotalMicroseconds / counted;
        var redis = (RedisCpuSeconds() - _redisTotalStart) * 1e6 / counted;
        var sorted = _cpuPerEvent.Skip(1).Order().ToArray(); // the first iteration activates the grains
        if (sorted.Length > 0)
            Console.WriteLine($"// CPU per event (BatchSize={BatchSize}, Sink={Sink}, Store={Store}): median {sorted[sorted.Length / 2]:F1} us over {sorted.Length} iterations (min {sorted[0]:F1}, max {sorted[^1]:F1}); " +
                $"total incl. {Settle.TotalSeconds:F0} s settle {total:F1} us" + (_redisServer is null ? "" : $"; redis-server {redis:F1} us"));
        _host.StopAsync().GetAwaiter().GetResult();
        _host.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Events)]
    public Task Ingest()
    {
        var perCustomer = Events / Customers;
        var now = DateTimeOffset.UtcNow;
        if (BatchSize == Mixed) return IngestMixed(perCustomer, now);
        return Task.WhenAll(Enumerable.Range(0, Customers).Select(async c =>
        {
            var customer = $"c{c}";
            for (var sent = 0; sent < perCustomer; sent += BatchSize)
            {
                var batch = new CustomerEvent[Math.Min(BatchSize, perCustomer - sent)];
                for (var i = 0; i < batch.Length; i++)
                    batch[i] = new CustomerEvent(Guid.NewGuid(), customer, EventKind.View, $"p{(c + sent + i) % Products}", now);
                if (batch.Length == 1) await _sink.RecordAsync(batch[0]);
                else await _sink.RecordBatchAsync(batch);
            }
        }));
    }

    // One RecordBatchAsync per round, each with one event per customer; 4 rounds in flight, as a
    // server with a few connections would have.
    private async Task IngestMixed(int rounds, DateTimeOffset now)
    {
        using var inFlight = new SemaphoreSlim(4);
        await Task.WhenAll(Enumerable.Range(0, rounds).Select(async round =>
        {
            await inFlight.WaitAsync();
            try
            {
                var batch = new CustomerEvent[Customers];
                for (var c = 0; c < Customers; c++)
                    batch[c] = new CustomerEvent(Guid.NewGuid(), $"c{c}", EventKind.View, $"p{(c + round) % Products}", now);
                await _sink.RecordBatchAsync(batch);
            }
            finally { inFlight.Release(); }
        }));
    }
}
