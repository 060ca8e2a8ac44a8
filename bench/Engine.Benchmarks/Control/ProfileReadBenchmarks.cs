using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Engine.Control;
using Engine.Control.Catalog;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using HdrHistogram;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;

namespace Engine.Benchmarks.Control;

/// <summary>Session-profile reads with 100k active sessions on one silo (issue 6 target: p99 ≤ 2 ms).
/// Setup activates <see cref="Sessions"/> session grains (one view event each, so each holds a
/// 384-dim profile) in the silo's process, as `engine serve` hosts them; each benchmark invocation
/// then reads <see cref="Reads"/> profiles of random sessions from <see cref="Readers"/> concurrent
/// readers (closed loop), the way the ranking reads a shopper's profile per Recommend. Every read's
/// latency goes into an HdrHistogram; percentiles are printed beside BenchmarkDotNet's table.
/// In-memory storage by default; with <c>ENGINE_BENCH_REDIS=HOST:PORT</c> the silo uses Redis clustering, grain
/// storage and event journal there (as <c>engine serve --redis</c>), so a read pays what a production read pays.</summary>
[MemoryDiagnoser]
[Config(typeof(LongInProcess))]
public class ProfileReadBenchmarks
{
    /// <summary>In process (a separate build times out on this 2-core machine), with a longer limit
    /// than [InProcess]'s: activating 100k sessions alone takes 1–2 minutes here.</summary>
    private sealed class LongInProcess : ManualConfig
    {
        public LongInProcess() => AddJob(Job.Default
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(30), logOutput: true))
            .WithWarmupCount(1).WithIterationCount(MeasuredIterations));
    }

    private const int Sessions = 100_000;
    private const int Reads = 20_000;
    private const int Readers = 4;
    private const int Products = 100;
    private const int Dimensions = 384; // MiniLM embedding size
    private IHost _host = null!;
    private IGrainFactory _grains = null!;
    private static readonly string? Redis = Environment.GetEnvironmentVariable("ENGINE_BENCH_REDIS") is { Length: > 0 } r ? r : null;
    private const int MeasuredIterations = 5; // = IterationCount: jitting and warm-up iterations are not kept
    // Microseconds, 1 µs .. 60 s, 3 significant digits. One per iteration, merged by all readers
    // of that iteration: guarded by itself.
    private LongHistogram _latency = NewHistogram();
    private readonly List<LongHistogram> _iterations = [];
    private int _iteration;

    [GlobalSetup]
    public void Setup()
    {
        _host = BenchSilo.Start(Products, Dimensions, Redis);
        _grains = _host.Services.GetRequiredService<IGrainFactory>();
        var sink = _host.Services.GetRequiredService<IEventSink>();
        var rng = new Random(1);

        // Activate the sessions in server-sized batches (one RecordBatch call per customer).
        var clock = Stopwatch.StartNew();
        var now = DateTimeOffset.UtcNow;
        const int batch = 1000;
        for (var start = 0; start < Sessions; start += batch)
        {
            var events = Enumerable.Range(start, Math.Min(batch, Sessions - start))
                .Select(c => new CustomerEvent(Guid.NewGuid(), $"c{c}", EventKind.View, $"p{c % Products}", now)).ToArray();
            var outcomes = sink.RecordBatchAsync(events).AsTask().GetAwaiter().GetResult();
            if (outcomes.Any(o => o != EventOutcome.Accepted)) throw new InvalidOperationException("setup event not accepted");
        }
        Console.WriteLine($"// {Sessions} sessions activated in {clock.Elapsed.TotalSeconds:F1} s; GC heap {GC.GetTotalMemory(false) / (1 << 20)} MiB");
    }

    [IterationSetup]
    public void NewIteration()
    {
        _iteration++;
        _latency = NewHistogram();
    }

    [IterationCleanup]
    public void EndIteration() => _iterations.Add(_latency);

    [GlobalCleanup]
    public void Cleanup()
    {
        var all = NewHistogram();
        foreach (var h in _iterations.TakeLast(MeasuredIterations)) all.Add(h);
        Console.WriteLine($"// profile read latency over {all.TotalCount} reads ({Math.Min(MeasuredIterations, _iterations.Count)} iterations), {Sessions} sessions, {Readers} readers, store {Redis ?? "memory"}: " +
            $"p50 {Ms(50)} ms, p90 {Ms(90)} ms, p99 {Ms(99)} ms, p99.9 {Ms(99.9)} ms, max {all.GetMaxValue() / 1000.0:F3} ms");
        _host.StopAsync().GetAwaiter().GetResult();
        _host.Dispose();

        string Ms(double percentile) => (all.GetValueAtPercentile(percentile) / 1000.0).ToString("F3");
    }

    private static LongHistogram NewHistogram() => new(60_000_000, 3);

    [Benchmark(OperationsPerInvoke = Reads)]
    public Task ReadProfiles() => Task.WhenAll(Enumerable.Range(0, Readers).Select(r => Task.Run(async () =>
    {
        var rng = new Random(r + 17 * _iteration);
        var local = NewHistogram();
        for (var i = 0; i < Reads / Readers; i++)
        {
            var customer = $"c{rng.Next(Sessions)}";
            var start = Stopwatch.GetTimestamp();
            var profile = await _grains.GetGrain<ICustomerSessionGrain>(customer).GetProfile();
            local.RecordValue(Math.Max(1, (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds));
            if (profile.Profile.Length != Dimensions) throw new InvalidOperationException($"session {customer} has no profile");
        }
        var shared = _latency;
        lock (shared) shared.Add(local);
    })));
}
