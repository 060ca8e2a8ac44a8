using System.CommandLine;
using Engine.Client;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Cli.Commands;

/// <summary><c>engine health</c>: asks a server for Health (no key needed); exit 0 when it answers Ok.</summary>
internal static class HealthCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Server port", DefaultValueFactory = _ => 7070 };
        var host = new Option<string>("--host") { Description = "Server host", DefaultValueFactory = _ => "127.0.0.1" };
        var timeout = new Option<int>("--timeout-ms") { Description = "Give up after this long", DefaultValueFactory = _ => 3000 };
        var command = new Command("health", "Check that a server is up (exit 0 when healthy)");
        foreach (var o in new Option[] { port, host, timeout }) command.Options.Add(o);
        command.SetAction(r =>
        {
            var options = new EngineClientOptions { Host = r.GetValue(host)!, Port = r.GetValue(port), ConnectTimeout = TimeSpan.FromMilliseconds(r.GetValue(timeout)) };
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(r.GetValue(timeout)));
                HealthResult health = EngineClient.ProbeHealthAsync(options, cts.Token).GetAwaiter().GetResult();
                var status = (HealthStatus)health.Status;
                Console.WriteLine($"{status.ToString().ToLowerInvariant()} {health.ServerName} uptime_ms={health.UptimeMs} connections={health.Connections} in_flight={health.InFlight} capabilities={(Capabilities)health.Capabilities}");
                return status == HealthStatus.Ok ? ExitCodes.Ok : ExitCodes.BadInput;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.Error.WriteLine($"error: no healthy server at {options.Host}:{options.Port}: {e.Message}");
                return ExitCodes.BadInput;
            }
        });
        return command;
    }
}
