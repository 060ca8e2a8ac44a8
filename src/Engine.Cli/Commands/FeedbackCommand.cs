using System.CommandLine;
using Engine.Client;
using Engine.Protocol.Messages;
using Engine.Runtime.Ranking;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine feedback export --port P --admin-key K [--experiment E] [--arm A] --out F</c>: pages through the server's
/// FeedbackExport (admin role) and writes the logged recommendations with their rewards as the feedback log
/// (JSON lines, docs/FEEDBACK-LOG.md) that <c>engine train-heads</c> reads. Without --experiment it exports the traffic
/// served outside any experiment. The file is written whole or not at all.
/// </summary>
internal static class FeedbackCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Server port", DefaultValueFactory = _ => 7070 };
        var host = new Option<string>("--host") { Description = "Server host", DefaultValueFactory = _ => "127.0.0.1" };
        var adminKey = new Option<string?>("--admin-key") { Description = "Admin API key (or ENGINE_ADMIN_KEY); none is needed on loopback when the server has no keys" };
        var experiment = new Option<string?>("--experiment") { Description = "Experiment id; none = recommendations served outside any experiment" };
        var arm = new Option<string?>("--arm") { Description = "Only this arm (default: every arm, holdout and shadow included)" };
        var output = new Option<string>("--out", "-o") { Description = "Feedback log to write (JSON lines; overwritten)", Required = true };
        var timeout = new Option<int>("--timeout-ms") { Description = "Give up after this long", DefaultValueFactory = _ => 30_000 };
        var export = new Command("export", "Write the logged recommendations and their rewards (clicks, carts, purchases, returns) as a JSON-lines feedback log");
        foreach (var o in new Option[] { port, host, adminKey, experiment, arm, output, timeout }) export.Options.Add(o);
        export.SetAction(r => CliErrors.Run(() =>
        {
            string key = r.GetValue(adminKey) ?? Environment.GetEnvironmentVariable("ENGINE_ADMIN_KEY") ?? "";
            var options = new EngineClientOptions { Host = r.GetValue(host)!, Port = r.GetValue(port), ApiKey = key, ConnectTimeout = TimeSpan.FromMilliseconds(r.GetValue(timeout)) };
            string outPath = r.GetValue(output)!;
            string? folder = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (folder is not null && !Directory.Exists(folder)) throw new UserInputException($"--out {outPath}: folder {folder} does not exist");
            string experimentId = r.GetValue(experiment) ?? "";
            List<FeedbackLogLine> lines;
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(r.GetValue(timeout)));
                lines = ExportAsync(options, experimentId, r.GetValue(arm), cts.Token).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new UserInputException($"feedback export from {options.Host}:{options.Port}: {e.Message}");
            }
            string temp = outPath + ".partial";
            using (var writer = new StreamWriter(temp, append: false, new System.Text.UTF8Encoding(false)))
                FeedbackLog.Write(writer, lines);
            File.Move(temp, outPath, overwrite: true);
            int shown = lines.Sum(l => l.Actions.Count);
            int rewarded = lines.Sum(l => l.Actions.Count(a => a.Clicks + a.Carts + a.Purchases + a.Returns > 0));
            Console.WriteLine($"exported {lines.Count} decisions ({shown} shown products, {rewarded} with feedback) of {(experimentId.Length == 0 ? "traffic outside experiments" : $"experiment {experimentId}")} to {outPath}");
            return ExitCodes.Ok;
        }));
        var command = new Command("feedback", "Logged recommendations and rewards: export them for retraining the scoring heads");
        command.Subcommands.Add(export);
        return command;
    }

    /// <summary>Every page of the export, as feedback log lines (a decision seen twice across pages is kept once).</summary>
    internal static async Task<List<FeedbackLogLine>> ExportAsync(EngineClientOptions options, string experiment, string? arm, CancellationToken token)
    {
        await using var client = await EngineClient.ConnectAsync(options, token).ConfigureAwait(false);
        var lines = new List<FeedbackLogLine>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int offset = 0;
        while (true)
        {
            var page = await client.ExportFeedbackAsync(new FeedbackExportRequest { ExperimentId = experiment, Arm = arm, Offset = offset }, token).ConfigureAwait(false);
            foreach (var d in page.Decisions)
                if (seen.Add(d.RecommendationId)) lines.Add(ToLine(experiment, d));
            if (!page.More || page.NextOffset <= offset) break;
            offset = page.NextOffset;
        }
        return lines;
    }

    /// <summary>A wire decision as a feedback log line.</summary>
    internal static FeedbackLogLine ToLine(string experiment, FeedbackDecision d) => new(
        d.RecommendationId, experiment, d.Arm, d.ModelVersion,
        DateTimeOffset.FromUnixTimeMilliseconds(d.ServedUnixMs),
        d.UpdatedUnixMs == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(d.UpdatedUnixMs),
        d.Shadow, d.Context,
        [.. d.Actions.Select(a => new FeedbackLogAction(a.ProductId, a.Position, a.Probability, a.Clicks, a.Carts, a.Purchases, a.Returns, a.Reward))]);
}
