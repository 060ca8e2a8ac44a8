using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Engine.Control;
using Engine.Control.Catalog;
using Engine.Control.Hosting;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;

namespace Engine.Benchmarks.Control;

/// <summary>Event ingestion through one silo (issue 6 target: ≥ 50,000 events/s with batching).
/// Events enter through <see cref="IEventSink"/> in the silo's process, as `engine serve` calls it;
/// in-memory storage, so the figure is the grains' cost, not Redis'. Each view event also reads
/// the product's embedding from its grain.</summary>
[MemoryDiagnoser]
[InProcess, WarmupCount(2), IterationCount(6)] // in process: a separate build times out on this 2-core machine
public class EventIngestionBenchmarks
{
    private const int Events = 16_384;
    private const int Customers = 512;
    private const int Products = 100;
    private IHost _host = null!;
    private IEventSink _sink = null!;

    /// <summary>Events per call per customer: 1 is one call per event; larger is the batched path;
    /// <see cref="Mixed"/> is what a server receives from a storefront: batches of one event for
    /// each of the 512 customers, so the sink makes one session call (and one write) per event.</summary>
    [Params(1, 32, Mixed)]
    public int BatchSize { get; set; }

    /// <summary><see cref="BatchSize"/> value for server-style batches across customers.</summary>
    public const int Mixed = -1;

    [GlobalSetup]
    public void Setup()
    {
        _host = BenchSilo.Start(Products);
        _sink = _host.Services.GetRequiredService<IEventSink>();
    }

    // Wall time on this shared 2-core machine swings with other jobs' load; the process's CPU time
    // per event does much less, so it is printed beside BenchmarkDotNet's table (median over the
    // iterations, silo background work included).
    private readonly List<double> _cpuPerEvent = [];
    private TimeSpan _cpuAtStart;

    [IterationSetup]
    public void StartCpuClock() => _cpuAtStart = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;

    [IterationCleanup]
    public void StopCpuClock() =>
        _cpuPerEvent.Add((System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - _cpuAtStart).TotalMicroseconds / Events);

    [GlobalCleanup]
    public void Cleanup()
    {
        var sorted = _cpuPerEvent.Skip(1).Order().ToArray(); // the first iteration activates the grains
        if (sorted.Length > 0)
            Console.WriteLine($"// CPU per event (BatchSize={BatchSize}): median {sorted[sorted.Length / 2]:F1} us over {sorted.Length} iterations (min {sorted[0]:F1}, max {sorted[^1]:F1})");
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
