using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Client;
using Engine.Protocol.Messages;
using HdrHistogram;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine loadgen</c>: an open-loop load generator. Requests are started at fixed times
/// (start + i / rate) whether or not earlier ones have answered, and each latency is measured from
/// its scheduled start, so a stalled server shows up in the percentiles instead of slowing the
/// generator down (coordinated omission). Latencies go into HdrHistogram; prints a table and, last,
/// <c>loadgen sent=N ok=N errors=N p50_ms=… p99_ms=… p999_ms=…</c>. With <c>--warmup S</c> the same schedule runs S
/// seconds first and those requests are left out of every figure (the generator's own start: its code is compiled
/// while it runs, on the cores it shares with the server).
/// </summary>
internal static class LoadgenCommand
{
    internal enum Kind { Recommend, Event, Generate }

    internal sealed class Tally
    {
        public readonly LongHistogram Latency = new(60_000_000, 3); // microseconds, up to 60 s, 3 significant digits
        public long Sent, Ok, Errors;
    }

    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Server port", DefaultValueFactory = _ => 7070 };
        var host = new Option<string>("--host") { Description = "Server host", DefaultValueFactory = _ => "127.0.0.1" };
        var apiKey = new Option<string?>("--api-key") { Description = "Storefront API key (or ENGINE_API_KEY)" };
        var rate = new Option<double>("--rate") { Description = "Requests per second (open loop)", DefaultValueFactory = _ => 1000 };
        var duration = new Option<double>("--duration") { Description = "Seconds to run", DefaultValueFactory = _ => 10 };
        var warmup = new Option<double>("--warmup") { Description = "Seconds at the same rate before --duration, left out of the figures", DefaultValueFactory = _ => 0 };
        var mix = new Option<string>("--mix") { Description = "Weights per kind, e.g. recommend=80,event=15,generate=5", DefaultValueFactory = _ => "recommend=80,event=15,generate=5" };
        var connections = new Option<int>("--connections") { Description = "Client connections, used round-robin", DefaultValueFactory = _ => 4 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per Generate", DefaultValueFactory = _ => 16 };
        var command = new Command("loadgen", "Open-loop load generator against a running server");
        foreach (var o in new Option[] { port, host, apiKey, rate, duration, warmup, mix, connections, maxTokens }) command.Options.Add(o);
        command.SetAction(r => CliErrors.Run(() =>
        {
            double perSecond = r.GetValue(rate), seconds = r.GetValue(duration), warm = r.GetValue(warmup);
            if (perSecond <= 0 || seconds <= 0) throw new UserInputException("--rate and --duration must be positive");
            if (!(warm >= 0)) throw new UserInputException("--warmup must be 0 or more seconds");
            var weights = ParseMix(r.GetValue(mix)!);
            string key = r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("ENGINE_API_KEY") ?? "";
            var options = new EngineClientOptions { Host = r.GetValue(host)!, Port = r.GetValue(port), ApiKey = key, ClientName = "engine-loadgen" };
            return RunAsync(options, perSecond, seconds, warm, weights, Math.Max(1, r.GetValue(connections)), r.GetValue(maxTokens)).GetAwaiter().GetResult();
        }));
        return command;
    }

    internal static (Kind Kind, int Weight)[] ParseMix(string text)
    {
        var result = new List<(Kind, int)>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] kv = part.Split('=', 2);
            if (kv.Length != 2 || !int.TryParse(kv[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int weight) || weight < 0)
                throw new UserInputException($"--mix: expected kind=weight, got '{part}'");
            Kind kind = kv[0].ToLowerInvariant() switch
            {
                "recommend" => Kind.Recommend,
                "event" or "events" => Kind.Event,
                "generate" => Kind.Generate,
                _ => throw new UserInputException($"--mix: unknown kind '{kv[0]}' (recommend, event, generate)"),
            };
            result.Add((kind, weight));
        }
        if (result.Sum(k => k.Item2) == 0) throw new UserInputException("--mix: all weights are 0");
        return [.. result];
    }

    private static async Task<int> RunAsync(EngineClientOptions options, double rate, double seconds, double warmupSeconds, (Kind Kind, int Weight)[] mix, int connectionCount, int maxTokens)
    {
        var clients = new EngineClient[connectionCount];
        try
        {
            for (int i = 0; i < clients.Length; i++) clients[i] = await EngineClient.ConnectAsync(options);
        }
        catch (Exception e) when (e is EngineConnectionException or EngineRequestException)
        {
            throw new UserInputException($"cannot connect to {options.Host}:{options.Port}: {e.Message}");
        }

        Measured m = await MeasureAsync(clients, rate, seconds, warmupSeconds, mix, maxTokens);
        foreach (var c in clients) await c.DisposeAsync();
        var (tallies, total, warm) = (m.ByKind, m.Total, m.Warmup);

        var table = new Table().AddColumns("kind", "sent", "ok", "errors", "p50 ms", "p99 ms", "p99.9 ms", "max ms");
        foreach (var (kind, t) in tallies.Where(t => t.Value.Sent > 0))
            table.AddRow(Row(kind.ToString().ToLowerInvariant(), t));
        table.AddRow(Row("all", total));
        AnsiConsole.Write(table);
        if (warm.Sent > 0)
            AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"warm-up: {warm.Sent} requests in the first {warmupSeconds:0.##} s ({warm.Errors} errors, p99 {Ms(warm, 99):0.###} ms), left out of the figures")));
        AnsiConsole.MarkupLine(Markup.Escape($"{total.Sent} requests in {m.Seconds:0.00} s = {total.Sent / m.Seconds:0} req/s (target {rate:0})"));
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"load generator CPU: {m.Cpu.TotalMilliseconds:0} ms = {m.Cpu.TotalMicroseconds / Math.Max(1, total.Sent):0.0} µs per request ({(LoadgenPacer.IsPrecise ? "nanosleep" : "millisecond sleep")} pacing)")));
        foreach (var (reason, n) in m.ErrorReasons.OrderByDescending(e => e.Value).Take(5))
            Console.Error.WriteLine($"errors: {n} × {reason}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"loadgen sent={total.Sent} ok={total.Ok} errors={total.Errors} p50_ms={Ms(total, 50):0.###} p99_ms={Ms(total, 99):0.###} p999_ms={Ms(total, 99.9):0.###}"));
        return total.Errors == 0 ? ExitCodes.Ok : ExitCodes.BadInput;
    }

    /// <summary>What one run measured: per kind and in all over the measured window, the warm-up apart, the window's
    /// length and the generator's CPU in it.</summary>
    internal sealed record Measured(Dictionary<Kind, Tally> ByKind, Tally Total, Tally Warmup, ConcurrentDictionary<string, int> ErrorReasons, double Seconds, TimeSpan Cpu);

    /// <summary>Runs the open-loop schedule on <paramref name="clients"/>: <paramref name="warmupSeconds"/> of requests
    /// counted in <see cref="Measured.Warmup"/> only, then <paramref name="seconds"/> measured.</summary>
    internal static async Task<Measured> MeasureAsync(EngineClient[] clients, double rate, double seconds, double warmupSeconds, (Kind Kind, int Weight)[] mix, int maxTokens)
    {
        var tallies = Enum.GetValues<Kind>().ToDictionary(k => k, _ => new Tally());
        var total = new Tally();
        var warm = new Tally(); // the warm-up's requests: counted here only
        var errorReasons = new ConcurrentDictionary<string, int>();
        var random = new Random(1234);
        int weightSum = mix.Sum(m => m.Weight);
        long warmCount = (long)Math.Round(rate * warmupSeconds);
        long count = warmCount + (long)Math.Round(rate * seconds);
        double ticksPerRequest = Stopwatch.Frequency / rate;
        var pending = new List<Task>();
        TimeSpan cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        long start = Stopwatch.GetTimestamp();
        long measuredStart = start + (long)(warmCount * ticksPerRequest);

        // Requests are issued from a dedicated thread that sleeps between them (LoadgenPacer) instead of
        // spinning: on a 2-core machine a spinning generator takes a core from the server it measures.
        // Each request starts on this thread up to its first wait (the frame written to the socket).
        var issued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        TimeSpan cpuAtMeasure = cpuStart;
        var pacer = new Thread(() =>
        {
            try
            {
                for (long i = 0; i < count; i++)
                {
                    long due = start + (long)(i * ticksPerRequest);
                    LoadgenPacer.Until(due);
                    int pick = random.Next(weightSum);
                    Kind kind = Pick(mix, pick);
                    EngineClient client = clients[i % clients.Length];
                    if (i == warmCount) cpuAtMeasure = Process.GetCurrentProcess().TotalProcessorTime;
                    pending.Add(i < warmCount ? OneAsync(client, kind, i, due, maxTokens, warm, null, errorReasons)
                                              : OneAsync(client, kind, i, due, maxTokens, tallies[kind], total, errorReasons));
                    if (pending.Count > 4096) pending.RemoveAll(t => t.IsCompleted);
                }
                issued.TrySetResult();
            }
            catch (Exception e)
            {
                issued.TrySetException(e);
            }
        }) { IsBackground = true, Name = "loadgen-pacer" };
        pacer.Start();
        await issued.Task;
        await Task.WhenAll(pending);
        double elapsed = Stopwatch.GetElapsedTime(measuredStart).TotalSeconds;
        TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuAtMeasure;
        return new Measured(tallies, total, warm, errorReasons, elapsed, cpu);
    }

    private static Kind Pick((Kind Kind, int Weight)[] mix, int pick)
    {
        foreach (var (kind, weight) in mix)
            if ((pick -= weight) < 0) return kind;
        return mix[^1].Kind;
    }

    private static string[] Row(string name, Tally t) =>
        [name, t.Sent.ToString(CultureInfo.InvariantCulture), t.Ok.ToString(CultureInfo.InvariantCulture), t.Errors.ToString(CultureInfo.InvariantCulture),
         Ms(t, 50).ToString("0.###", CultureInfo.InvariantCulture), Ms(t, 99).ToString("0.###", CultureInfo.InvariantCulture),
         Ms(t, 99.9).ToString("0.###", CultureInfo.InvariantCulture), Ms(t, 100).ToString("0.###", CultureInfo.InvariantCulture)];

    private static double Ms(Tally t, double percentile)
    {
        lock (t.Latency) return t.Latency.TotalCount == 0 ? 0 : t.Latency.GetValueAtPercentile(percentile) / 1000.0;
    }

    private static async Task OneAsync(EngineClient client, Kind kind, long n, long due, int maxTokens, Tally tally, Tally? total, ConcurrentDictionary<string, int> reasons)
    {
        Interlocked.Increment(ref tally.Sent);
        if (total is not null) Interlocked.Increment(ref total.Sent);
        bool ok;
        try
        {
            switch (kind)
            {
                case Kind.Recommend:
                    await client.RecommendAsync(new RecommendRequest { CustomerId = $"c{n % 10_000}", Page = "home", Device = "web", K = 10 });
                    break;
                case Kind.Event:
                    await client.SendEventsAsync([new ShopperEvent { CustomerId = $"c{n % 10_000}", Kind = (byte)EventKind.Click, ProductId = $"p{n % 1000}", TimeUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }]);
                    break;
                default:
                    await foreach (string _ in client.GenerateAsync(new GenerateRequest { Prompt = $"Once upon a time there was a product number {n % 100}", MaxTokens = maxTokens })) { }
                    break;
            }
            ok = true;
        }
        catch (Exception e) when (e is EngineRequestException or EngineConnectionException or OperationCanceledException)
        {
            ok = false;
            reasons.AddOrUpdate($"{kind.ToString().ToLowerInvariant()}: {e.Message}", 1, (_, v) => v + 1);
        }
        long micros = (long)Stopwatch.GetElapsedTime(due).TotalMicroseconds;
        foreach (Tally? t in new[] { tally, total })
        {
            if (t is null) continue;
            if (ok) Interlocked.Increment(ref t.Ok);
            else Interlocked.Increment(ref t.Errors);
            lock (t.Latency) t.Latency.RecordValue(Math.Clamp(micros, 1, 60_000_000));
        }
    }
}
