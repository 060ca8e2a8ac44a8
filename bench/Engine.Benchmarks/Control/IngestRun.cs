using System.Diagnostics;
using System.Globalization;
using Engine.Control;
using Engine.Control.Sessions;
using HdrHistogram;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using StackExchange.Redis;

namespace Engine.Benchmarks.Control;

/// <summary>
/// <c>Engine.Benchmarks ingest --redis HOST:PORT [options]</c>: event ingestion through one silo at its
/// highest closed-loop rate (issue 6 target: ≥ 50,000 events/s), the server's shape: every sink call is a
/// batch of ONE event per shopper (<c>--batch</c> shoppers, taken in turn from <c>--shoppers</c>), with
/// <c>--in-flight</c> calls outstanding (as many server connections). The sink is the silo's own
/// (<see cref="IEventSink"/> from its services, as `engine serve` calls it); each call returns once the
/// journal write is durable in redis-server (run it with <c>--appendfsync always</c>). Not BenchmarkDotNet:
/// a timed run, so the wall rate, both processes' CPU, the journal's write sizes and the machine's load
/// come from one window. Prints one line per run: <c>ingest mode=… events_per_s=… ack_p50_ms=… …</c>.
/// </summary>
/// <remarks>Options: <c>--seconds</c> measured (10), <c>--warmup</c> seconds before (5), <c>--shoppers</c> (512),
/// <c>--batch</c> events per call (512), <c>--in-flight</c> (8), <c>--redis none</c> for in-memory storage and journal, <c>--policy</c> new|old|both (the sessions' checkpoint policy: new = length or age,
/// <see cref="ControlOptions.SessionCheckpointEntries"/> entries or <see cref="ControlOptions.SessionCheckpointInterval"/>, the defaults; old = every
/// 5 s per active session whatever it holds, the earlier default; both: old then new, each in its own silo), <c>--checkpoint-seconds</c>, <c>--checkpoint-entries</c> and <c>--checkpoint-batching on|off</c> (override the policy's
/// interval, length bound and cross-session batching of the checkpoints' journal commands; old = off), <c>--apply-ms</c> (50, <see cref="ControlOptions.JournalApplyInterval"/>), <c>--mode</c> group|pipelined|both (both:
/// the earlier pipelined XADD form and the group-committed one, each in its own silo, one after the other).
/// Redis CPU comes from redis-server's INFO cpu over the window (it includes the sessions' checkpoint writes), journal writes from the journal's own counters; after
/// the window the silo settles and a sample of sessions is read back (events applied = acknowledged).</remarks>
internal static class IngestRun
{
    public static int Run(string[] args)
    {
        var o = Parse(args);
        if (!o.TryGetValue("redis", out var redis)) { Console.Error.WriteLine("usage: ingest --redis HOST:PORT [--seconds 10] [--warmup 5] [--shoppers 512] [--batch 512] [--in-flight 8] [--mode group|pipelined|both]"); return 2; }
        var mode = o.GetValueOrDefault("mode", "group");
        var policy = o.GetValueOrDefault("policy", "new");
        if (policy is not ("new" or "old" or "both")) { Console.Error.WriteLine($"--policy {policy}: expected new, old or both"); return 2; }
        foreach (var m in mode == "both" ? new[] { "pipelined", "group" } : [mode])
        {
            if (m is not ("group" or "pipelined")) { Console.Error.WriteLine($"--mode {m}: expected group, pipelined or both"); return 2; }
            foreach (var p in policy == "both" ? new[] { "old", "new" } : [policy])
            {
                // old: the earlier default (age only, 5 s); new: ControlOptions' defaults (length or age).
                var defaults = new ControlOptions();
                var interval = p == "old" ? TimeSpan.FromSeconds(5) : defaults.SessionCheckpointInterval;
                var entries = p == "old" ? 0 : defaults.SessionCheckpointEntries;
                if (o.ContainsKey("checkpoint-seconds")) interval = TimeSpan.FromSeconds(Int(o, "checkpoint-seconds", 5));
                if (o.ContainsKey("checkpoint-entries")) entries = Int(o, "checkpoint-entries", 0);
                var batching = p != "old";
                if (o.TryGetValue("checkpoint-batching", out var b)) batching = b is "1" or "true" or "on";
                RunOnce(redis, m == "group", Int(o, "seconds", 10), Int(o, "warmup", 5), Int(o, "shoppers", 512), Int(o, "batch", 512), Int(o, "in-flight", 8),
                    p, interval, entries, batching, TimeSpan.FromMilliseconds(Int(o, "apply-ms", 50)));
            }
        }
        return 0;
    }

    private static void RunOnce(string redis, bool groupCommit, int seconds, int warmup, int shoppers, int batchSize, int inFlight,
        string policy, TimeSpan checkpoint, int checkpointEntries, bool checkpointBatching, TimeSpan apply)
    {
        const int Products = 100;
        var memory = redis == "none"; // in-memory storage and journal: the same silo without the store, for comparison
        using var host = BenchSilo.Start(Products, redis: memory ? null : redis, configure: c =>
        {
            c.JournalGroupCommit = groupCommit; c.SessionCheckpointInterval = checkpoint; c.SessionCheckpointEntries = checkpointEntries;
            c.SessionCheckpointBatching = checkpointBatching; c.JournalApplyInterval = apply;
        });
        var sink = host.Services.GetRequiredService<IEventSink>();
        using var mux = memory ? null : ConnectionMultiplexer.Connect(redis + ",allowAdmin=true");
        var server = mux?.GetServer(mux.GetEndPoints()[0]);

        // Every session activated first (its state read, its journal counted), as on a storefront that has been up
        // a while: activating 20,000 sessions took longer than the warm-up on a loaded machine, and the applier,
        // busy activating, then checkpointed nothing in the window, which measured the acknowledgement path alone.
        var activate = Stopwatch.StartNew();
        var grainFactory = host.Services.GetRequiredService<IGrainFactory>();
        foreach (var chunk in Enumerable.Range(0, shoppers).Chunk(1024))
            Task.WhenAll(chunk.Select(c => grainFactory.GetGrain<ICustomerSessionGrain>($"c{c}").GetProfile())).GetAwaiter().GetResult();
        Console.Error.WriteLine($"ingest: {shoppers} sessions activated in {activate.Elapsed.TotalSeconds:F1} s");

        var acked = new long[shoppers];
        var latency = new LongHistogram(60_000_000, 3); // µs
        long events = 0, next = 0;
        var measuring = false;
        using var stop = new CancellationTokenSource();
        var now = DateTimeOffset.UtcNow;
        var loops = Enumerable.Range(0, inFlight).Select(_ => Task.Run(async () =>
        {
            var local = new LongHistogram(60_000_000, 3);
            while (!stop.IsCancellationRequested)
            {
                // One event per shopper: the next batchSize shoppers of the population, in turn.
                var first = Interlocked.Add(ref next, batchSize) - batchSize;
                var batch = new CustomerEvent[batchSize];
                for (var i = 0; i < batchSize; i++)
                {
                    var n = first + i;
                    batch[i] = new CustomerEvent(Guid.NewGuid(), $"c{n % shoppers}", EventKind.View, $"p{n % Products}", now.AddTicks(n));
                }
                var start = Stopwatch.GetTimestamp();
                var outcomes = await sink.RecordBatchAsync(batch);
                var took = Stopwatch.GetElapsedTime(start);
                for (var i = 0; i < batchSize; i++)
                {
                    if (outcomes[i] != EventOutcome.Accepted) throw new InvalidOperationException($"event not accepted: {outcomes[i]}");
                    Interlocked.Increment(ref acked[(first + i) % shoppers]);
                }
                if (Volatile.Read(ref measuring))
                {
                    Interlocked.Add(ref events, batchSize);
                    local.RecordValue(Math.Max(1, (long)took.TotalMicroseconds));
                }
            }
            lock (latency) latency.Add(local);
        })).ToArray();

        Thread.Sleep(TimeSpan.FromSeconds(warmup));
        var journal = host.Services.GetRequiredService<Engine.Control.Storage.IEventJournal>() as Engine.Control.Storage.RedisEventJournal;
        var (cpu0, redis0, stats0, load0) = (ProcessCpu(), RedisCpu(server), (Writes: journal?.Writes ?? 0, EntriesWritten: journal?.EntriesWritten ?? 0), LoadAverage());
        var ackedAtWindow = acked.Sum();
        var applier = host.Services.GetRequiredService<JournalApplier>();
        var apply0 = applier.Progress;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref measuring, false);
        var elapsed = clock.Elapsed.TotalSeconds;
        var measured = Interlocked.Read(ref events);
        var (cpu1, redis1, stats1, load1) = (ProcessCpu(), RedisCpu(server), (Writes: journal?.Writes ?? 0, EntriesWritten: journal?.EntriesWritten ?? 0), LoadAverage());
        var apply1 = applier.Progress;
        var held = JournalHeld(host, mux, shoppers);
        stop.Cancel();
        Task.WaitAll(loops);
        // The sessions apply after the ack and checkpoint every interval: CPU up to the end of a settle
        // period longer than the checkpoint interval, over every event acknowledged since the window began.
        var ackedAtStop = acked.Sum();
        Thread.Sleep(TimeSpan.FromSeconds(Math.Min(checkpoint.TotalSeconds + 1, 31)));
        var (cpu2, redis2) = (ProcessCpu(), RedisCpu(server));
        var sinceWindow = Math.Max(1, ackedAtStop - ackedAtWindow);

        var writes = stats1.Writes - stats0.Writes;
        var entries = stats1.EntriesWritten - stats0.EntriesWritten;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ingest store={(memory ? "memory" : "redis")} mode={(groupCommit ? "group" : "pipelined")} policy={policy} shoppers={shoppers} batch={batchSize} in_flight={inFlight} checkpoint_s={checkpoint.TotalSeconds} checkpoint_entries={checkpointEntries} checkpoint_batching={(checkpointBatching ? "on" : "off")} apply_ms={apply.TotalMilliseconds} seconds={elapsed:F1} events={measured} " +
            $"events_per_s={measured / elapsed:F0} ack_p50_ms={latency.GetValueAtPercentile(50) / 1000.0:F2} ack_p99_ms={latency.GetValueAtPercentile(99) / 1000.0:F2} " +
            $"silo_cpu_us_per_event={(cpu1 - cpu0) * 1e6 / Math.Max(1, measured):F1} redis_cpu_us_per_event={(redis1 - redis0) * 1e6 / Math.Max(1, measured):F1} " +
            $"journal_writes={writes} entries_per_write={(writes > 0 ? (double)entries / writes : 0):F1} writes_per_s={writes / elapsed:F0} load={load0}..{load1} " +
            $"with_settle: silo_cpu_us_per_event={(cpu2 - cpu0) * 1e6 / sinceWindow:F1} redis_cpu_us_per_event={(redis2 - redis0) * 1e6 / sinceWindow:F1} " +
            $"apply_passes={apply1.Passes - apply0.Passes} apply_calls={apply1.Calls - apply0.Calls} apply_busy_s={(apply1.Busy - apply0.Busy).TotalSeconds:F1} " +
            $"run_trims={journal?.TrimBatches.Trims ?? 0} in {journal?.TrimBatches.Calls ?? 0} calls run_counts={journal?.CountBatches.Counts ?? 0} in {journal?.CountBatches.Calls ?? 0} calls " +
            $"at_window_end: journal_entries_held={held.Entries} per_session_mean={held.Entries / (double)shoppers:F1} per_session_max={held.Max} journal_bytes_per_entry={held.BytesPerEntry:F0}"));

        // Settle (the applier hands entries to the sessions right after the ack), then read a sample back.
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var missing = 0;
        foreach (var c in Enumerable.Range(0, Math.Min(shoppers, 64)))
        {
            var applied = grains.GetGrain<ICustomerSessionGrain>($"c{c}").GetProfile().GetAwaiter().GetResult().EventsApplied;
            if (applied != acked[c]) missing++;
        }
        Console.WriteLine($"ingest check: {Math.Min(shoppers, 64) - missing} of {Math.Min(shoppers, 64)} sampled sessions hold exactly their acknowledged events; " +
            $"whole run (warm-up, window, stop): {acked.Sum()} events acknowledged in {journal?.Writes} journal writes");
        host.StopAsync().GetAwaiter().GetResult();
    }

    /// <summary>The journal the store holds at the end of the window (what a crash would leave to replay, and
    /// the Redis memory the checkpoint policy costs): entries over all shoppers' streams (XLEN, pipelined), the
    /// most in one stream, and bytes per entry from MEMORY USAGE of up to 64 non-empty streams.</summary>
    private static (long Entries, long Max, double BytesPerEntry) JournalHeld(IHost host, ConnectionMultiplexer? mux, int shoppers)
    {
        if (mux is null) return (0, 0, 0);
        var service = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Orleans.Configuration.ClusterOptions>>().Value.ServiceId;
        var db = mux.GetDatabase();
        var keys = Enumerable.Range(0, shoppers).Select(c => (RedisKey)$"engine-journal/{service}/c{c}").ToArray();
        var lengths = Task.WhenAll(keys.Select(k => db.StreamLengthAsync(k))).GetAwaiter().GetResult();
        long bytes = 0, sampled = 0;
        foreach (var i in Enumerable.Range(0, shoppers).Where(i => lengths[i] > 0).Take(64))
        {
            bytes += (long)db.Execute("MEMORY", "USAGE", keys[i]);
            sampled += lengths[i];
        }
        return (lengths.Sum(), lengths.Length > 0 ? lengths.Max() : 0, sampled > 0 ? (double)bytes / sampled : 0);
    }

    private static double ProcessCpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    private static double RedisCpu(IServer? server)
    {
        if (server is null) return 0;
        var cpu = server.Info("cpu").SelectMany(g => g).ToDictionary(kv => kv.Key, kv => kv.Value);
        return double.Parse(cpu["used_cpu_sys"], CultureInfo.InvariantCulture) + double.Parse(cpu["used_cpu_user"], CultureInfo.InvariantCulture);
    }

    private static Dictionary<string, string> Parse(string[] args)
    {
        var o = new Dictionary<string, string>();
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"expected --name value, got '{args[i]}'");
            o[args[i][2..]] = args[i + 1];
        }
        return o;
    }

    private static int Int(Dictionary<string, string> o, string name, int fallback) =>
        o.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
