using System.CommandLine;
using System.Globalization;
using Engine.Runtime.Ranking;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine train-heads --log F --out heads.json [--l2 X] [--ips] [--init heads.json] [--version V]</c>: reads a
/// feedback log (docs/FEEDBACK-LOG.md), fits the four scoring heads (click | shown, add-to-cart | click,
/// purchase | add-to-cart, return | purchase) with the Newton fit, writes the versioned heads file that
/// <c>engine serve --heads</c> and <c>engine rank --heads</c> load, and prints a table of each head's examples,
/// positives, log loss and AUC before (the initial heads) and after. A bad line fails with its line number (exit 1);
/// so does a log with no served decision.
/// </summary>
internal static class TrainHeadsCommand
{
    public static Command Create()
    {
        var log = new Option<string>("--log") { Description = "Feedback log (JSON lines from `engine feedback export`)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Heads file to write (JSON; overwritten)", Required = true };
        var l2 = new Option<double>("--l2") { Description = "L2 penalty per example on the weights", DefaultValueFactory = _ => new LogisticFitOptions().L2 };
        var ips = new Option<bool>("--ips") { Description = "Weigh each shown product by 1/probability (inverse propensity; no effect on a deterministic policy's log)" };
        var init = new Option<string?>("--init") { Description = "Heads file to compare against and to keep for a head without data (default: the built-in heads)" };
        var version = new Option<string?>("--version") { Description = "Version of the trained heads (default: trained-<UTC time>)" };
        var command = new Command("train-heads", "Fit the ranking's scoring heads from a feedback log and write a heads file");
        foreach (var o in new Option[] { log, output, l2, ips, init, version }) command.Options.Add(o);
        command.SetAction(r => CliErrors.Run(() => Run(r.GetValue(log)!, r.GetValue(output)!, r.GetValue(l2), r.GetValue(ips), r.GetValue(init), r.GetValue(version))));
        return command;
    }

    private static int Run(string logPath, string outPath, double l2, bool ips, string? initPath, string? version)
    {
        if (!double.IsFinite(l2) || l2 < 0) throw new UserInputException($"--l2 {l2}: must be a finite number ≥ 0");
        if (!File.Exists(logPath)) throw new UserInputException($"--log {logPath}: no such file");
        string? folder = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (folder is not null && !Directory.Exists(folder)) throw new UserInputException($"--out {outPath}: folder {folder} does not exist");
        ScoringHeads? initial = null;
        if (initPath is not null)
        {
            try { initial = ScoringHeads.Load(initPath); }
            catch (InvalidDataException e) { throw new UserInputException($"--init: {e.Message}"); }
        }
        var options = new HeadTrainingOptions
        {
            Version = version ?? "trained-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture),
            L2 = l2,
            InversePropensity = ips,
            Initial = initial,
        };
        if (string.IsNullOrWhiteSpace(options.Version)) throw new UserInputException("--version must not be empty");

        List<FeedbackLogLine> lines;
        HeadTrainingSets sets;
        try
        {
            lines = FeedbackLog.ReadFile(logPath);
            sets = HeadTrainer.BuildSets(lines, options);
        }
        catch (FormatException e) { throw new UserInputException(e.Message); } // FeedbackLogException names file:line
        if (lines.Count == 0) throw new UserInputException($"--log {logPath}: no logged decisions (empty log)");
        ScoringHeads heads;
        IReadOnlyList<HeadReport> report;
        try { (heads, report) = HeadTrainer.Train(sets, options); }
        catch (ArgumentException e) { throw new UserInputException($"--log {logPath}: {e.Message}"); }
        heads.Save(outPath);

        var table = new Table().AddColumns("head", "examples", "positives", "log-loss before", "log-loss after", "AUC before", "AUC after", "fitted");
        foreach (var h in report)
            table.AddRow(h.Head, N(h.Examples), N(h.Positives), F(h.LogLossBefore), F(h.LogLossAfter), F(h.AucBefore), F(h.AucAfter), h.Fitted ? "yes" : "no (kept)");
        var console = AnsiConsole.Console;
        if (Console.IsOutputRedirected) console.Profile.Width = Math.Max(console.Profile.Width, 120);
        console.Write(table);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train-heads decisions={sets.Decisions} shadow_skipped={sets.SkippedShadow} version={heads.Version} out={outPath}"));
        return ExitCodes.Ok;
    }

    private static string N(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string F(double x) => double.IsNaN(x) ? "–" : x.ToString("F4", CultureInfo.InvariantCulture);
}
