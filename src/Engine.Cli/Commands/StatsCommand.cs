using System.CommandLine;
using System.Text.Json;
using Engine.Client;
using Engine.Protocol.Messages;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine stats</c>: asks a server for Stats and prints JSON: a top-level <c>eventsPersisted</c>
/// (the control plane's counter, from "control.events_persisted"; -1 when the server has no control
/// plane or has not read it yet), every figure the server reported under <c>entries</c>, and the
/// control plane's <c>experiments</c> with per-arm counts, rewards and rates with 95% intervals.
/// </summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Server port", DefaultValueFactory = _ => 7070 };
        var host = new Option<string>("--host") { Description = "Server host", DefaultValueFactory = _ => "127.0.0.1" };
        var adminKey = new Option<string?>("--admin-key") { Description = "Admin API key (or ENGINE_ADMIN_KEY); none is needed on loopback when the server has no keys" };
        var prefix = new Option<string>("--prefix") { Description = "Only figures whose name starts with this", DefaultValueFactory = _ => "" };
        var timeout = new Option<int>("--timeout-ms") { Description = "Give up after this long", DefaultValueFactory = _ => 5000 };
        var command = new Command("stats", "Print a server's figures (and the control plane's eventsPersisted) as JSON");
        foreach (var o in new Option[] { port, host, adminKey, prefix, timeout }) command.Options.Add(o);
        command.SetAction(r =>
        {
            string key = r.GetValue(adminKey) ?? Environment.GetEnvironmentVariable("ENGINE_ADMIN_KEY") ?? "";
            var options = new EngineClientOptions { Host = r.GetValue(host)!, Port = r.GetValue(port), ApiKey = key, ConnectTimeout = TimeSpan.FromMilliseconds(r.GetValue(timeout)) };
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(r.GetValue(timeout)));
                StatsResult stats = Fetch(options, r.GetValue(prefix) ?? "", cts.Token).GetAwaiter().GetResult();
                Console.WriteLine(ToJson(stats));
                return ExitCodes.Ok;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.Error.WriteLine($"error: stats from {options.Host}:{options.Port}: {e.Message}");
                return ExitCodes.BadInput;
            }
        });
        return command;
    }

    private static async Task<StatsResult> Fetch(EngineClientOptions options, string prefix, CancellationToken token)
    {
        await using var client = await EngineClient.ConnectAsync(options, token).ConfigureAwait(false);
        return await client.StatsAsync(prefix, token).ConfigureAwait(false);
    }

    /// <summary>{"eventsPersisted": n, "entries": {name: value, ...}, "experiments": [...]} (names in the
    /// server's order; experiments as StatsResult member 1 carries them).</summary>
    internal static string ToJson(StatsResult stats)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            var persisted = stats.Entries.FirstOrDefault(e => e.Name == "control.events_persisted");
            w.WriteNumber("eventsPersisted", persisted is null ? -1 : (long)persisted.Value);
            w.WriteStartObject("entries");
            foreach (var e in stats.Entries) w.WriteNumber(e.Name, e.Value);
            w.WriteEndObject();
            w.WriteStartArray("experiments");
            foreach (var e in stats.Experiments) WriteExperiment(w, e);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    // The same shape as the control plane's own JSON (Engine.Control.ControlStats.ToJson).
    private static void WriteExperiment(Utf8JsonWriter w, ExperimentStat e)
    {
        w.WriteStartObject();
        w.WriteString("id", e.Id);
        w.WriteString("status", e.Status);
        w.WriteNumber("configVersion", e.ConfigVersion);
        w.WriteStartObject("srm");
        w.WriteBoolean("checked", e.SrmChecked);
        w.WriteBoolean("mismatch", e.SrmMismatch);
        w.WriteNumber("chiSquare", e.SrmChiSquare);
        w.WriteNumber("critical", e.SrmCritical);
        w.WriteEndObject();
        w.WriteStartArray("arms");
        foreach (var a in e.Arms)
        {
            w.WriteStartObject();
            w.WriteString("arm", a.Arm);
            w.WriteString("modelVersion", a.ModelVersion);
            w.WriteNumber("assignments", a.Assignments);
            w.WriteNumber("exposures", a.Exposures);
            w.WriteNumber("clicks", a.Clicks);
            w.WriteNumber("carts", a.Carts);
            w.WriteNumber("purchases", a.Purchases);
            w.WriteNumber("returns", a.Returns);
            w.WriteNumber("rewardSum", a.RewardSum);
            WriteRate(w, "clickRate", a.ClickRate);
            WriteRate(w, "cartRate", a.CartRate);
            WriteRate(w, "purchaseRate", a.PurchaseRate);
            WriteRate(w, "returnRate", a.ReturnRate);
            WriteRate(w, "rewardPerExposure", a.RewardPerExposure);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteRate(Utf8JsonWriter w, string name, RateStat? r)
    {
        w.WriteStartObject(name);
        w.WriteNumber("value", r?.Value ?? 0);
        w.WriteNumber("low", r?.Low ?? 0);
        w.WriteNumber("high", r?.High ?? 0);
        w.WriteEndObject();
    }
}
