using System.Buffers;
using System.Text.Json;

namespace Engine.Runtime.Ranking;

/// <summary>One shown product of a logged decision and what the shopper did with it (docs/FEEDBACK-LOG.md).</summary>
/// <param name="ProductId">The product.</param>
/// <param name="Position">1-based position in the served list (row <c>Position − 1</c> of the context's items).</param>
/// <param name="Probability">The probability the logging policy gave to showing it (the propensity; 1 for the
/// deterministic top-k ranking of <c>engine serve</c>).</param>
/// <param name="Clicks">Click events naming this recommendation and product.</param>
/// <param name="Carts">Add-to-cart events.</param>
/// <param name="Purchases">Purchase events.</param>
/// <param name="Returns">Return events.</param>
/// <param name="Reward">Sum of the rewards of those events (the control plane's configured reward values).</param>
public sealed record FeedbackLogAction(string ProductId, int Position, float Probability, int Clicks, int Carts, int Purchases, int Returns, double Reward);

/// <summary>One logged decision: a line of the feedback log (docs/FEEDBACK-LOG.md).</summary>
/// <param name="RecommendationId">The id the server returned with the list (and events quote).</param>
/// <param name="Experiment">The experiment ("" for traffic outside any experiment).</param>
/// <param name="Arm">The arm that produced the list.</param>
/// <param name="ModelVersion">The ranking's model version (heads, encoder, catalog, index).</param>
/// <param name="ServedAt">When it was served (server clock).</param>
/// <param name="UpdatedAt">When a reward was last added, or null when none was.</param>
/// <param name="Shadow">Computed and logged only, never shown: it cannot earn rewards.</param>
/// <param name="Context">The context JSON (<see cref="ExposureContext"/>).</param>
/// <param name="Actions">The shown products, by position.</param>
public sealed record FeedbackLogLine(
    string RecommendationId, string Experiment, string Arm, string ModelVersion, DateTimeOffset ServedAt, DateTimeOffset? UpdatedAt,
    bool Shadow, string Context, IReadOnlyList<FeedbackLogAction> Actions)
{
    /// <summary>Sum of the actions' rewards.</summary>
    public double Reward => Actions.Sum(a => a.Reward);
}

/// <summary>A line of a feedback log that cannot be read: the message names the line.</summary>
public sealed class FeedbackLogException(string source, int line, string message)
    : FormatException($"{source}:{line}: {message}")
{
    /// <summary>1-based line number.</summary>
    public int Line { get; } = line;
}

/// <summary>
/// The feedback log: JSON lines, one decision per line (docs/FEEDBACK-LOG.md), what <c>engine feedback export</c> writes
/// and <c>engine train-heads</c> reads.
/// </summary>
public static class FeedbackLog
{
    /// <summary>Line format version written in <c>"v"</c>.</summary>
    public const int Version = 1;

    /// <summary>One line of JSON (no newline).</summary>
    public static string ToLine(FeedbackLogLine d)
    {
        ArgumentNullException.ThrowIfNull(d);
        var buffer = new ArrayBufferWriter<byte>(512 + d.Context.Length);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("v", Version);
            w.WriteString("recommendationId", d.RecommendationId);
            w.WriteString("experiment", d.Experiment);
            w.WriteString("arm", d.Arm);
            w.WriteString("modelVersion", d.ModelVersion);
            w.WriteString("servedAt", d.ServedAt.UtcDateTime);
            if (d.UpdatedAt is { } updated) w.WriteString("updatedAt", updated.UtcDateTime); else w.WriteNull("updatedAt");
            w.WriteBoolean("shadow", d.Shadow);
            w.WriteNumber("reward", d.Reward);
            w.WriteStartArray("shown");
            foreach (var a in d.Actions) w.WriteNumberValue(a.Position);
            w.WriteEndArray();
            w.WriteStartArray("chosen");
            foreach (var a in d.Actions) if (a.Clicks + a.Carts + a.Purchases > 0) w.WriteNumberValue(a.Position);
            w.WriteEndArray();
            w.WritePropertyName("context");
            if (IsJsonObject(d.Context)) w.WriteRawValue(d.Context, skipInputValidation: true);
            else w.WriteStringValue(d.Context); // a producer that logs something else: kept, readable as a string
            w.WriteStartArray("actions");
            foreach (var a in d.Actions)
            {
                w.WriteStartObject();
                w.WriteString("product", a.ProductId);
                w.WriteNumber("position", a.Position);
                w.WriteNumber("probability", a.Probability);
                w.WriteNumber("clicks", a.Clicks);
                w.WriteNumber("carts", a.Carts);
                w.WriteNumber("purchases", a.Purchases);
                w.WriteNumber("returns", a.Returns);
                w.WriteNumber("reward", a.Reward);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static bool IsJsonObject(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Writes <paramref name="decisions"/> as JSON lines.</summary>
    public static void Write(TextWriter writer, IEnumerable<FeedbackLogLine> decisions)
    {
        foreach (var d in decisions) writer.WriteLine(ToLine(d));
    }

    /// <summary>Reads every line of <paramref name="path"/> (blank lines are skipped).</summary>
    /// <exception cref="FeedbackLogException">A line that is not a valid decision (the message names file and line).</exception>
    public static List<FeedbackLogLine> ReadFile(string path)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8);
        return Read(reader, Path.GetFileName(path)).ToList();
    }

    /// <summary>Reads decisions line by line; <paramref name="source"/> names the input in errors.</summary>
    /// <exception cref="FeedbackLogException">A line that is not a valid decision.</exception>
    public static IEnumerable<FeedbackLogLine> Read(TextReader reader, string source = "feedback log")
    {
        int number = 0;
        while (reader.ReadLine() is { } text)
        {
            number++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            yield return Parse(text, source, number);
        }
    }

    /// <summary>Parses one line.</summary>
    /// <exception cref="FeedbackLogException">Not a valid decision.</exception>
    public static FeedbackLogLine Parse(string text, string source = "feedback log", int line = 1)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new FeedbackLogException(source, line, $"not JSON ({e.Message})"); }
        using (doc)
        {
            try
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw new FormatException("a line must be a JSON object");
                if (Required(root, "v", JsonValueKind.Number).GetInt32() != Version) throw new FormatException($"\"v\" must be {Version}");
                var actions = new List<FeedbackLogAction>();
                foreach (var a in Required(root, "actions", JsonValueKind.Array).EnumerateArray())
                {
                    var action = new FeedbackLogAction(
                        Required(a, "product", JsonValueKind.String).GetString()!,
                        Count(a, "position", min: 1),
                        Required(a, "probability", JsonValueKind.Number).GetSingle(),
                        Count(a, "clicks"), Count(a, "carts"), Count(a, "purchases"), Count(a, "returns"),
                        Required(a, "reward", JsonValueKind.Number).GetDouble());
                    if (!(action.Probability is > 0 and <= 1)) throw new FormatException($"action \"{action.ProductId}\": probability must be in (0, 1], got {action.Probability}");
                    if (!double.IsFinite(action.Reward)) throw new FormatException($"action \"{action.ProductId}\": reward must be finite");
                    actions.Add(action);
                }
                var context = Required(root, "context", null);
                DateTimeOffset? updated = root.TryGetProperty("updatedAt", out var u) && u.ValueKind == JsonValueKind.String ? u.GetDateTimeOffset() : null;
                return new FeedbackLogLine(
                    Required(root, "recommendationId", JsonValueKind.String).GetString()!,
                    Required(root, "experiment", JsonValueKind.String).GetString()!,
                    Required(root, "arm", JsonValueKind.String).GetString()!,
                    Required(root, "modelVersion", JsonValueKind.String).GetString()!,
                    Required(root, "servedAt", JsonValueKind.String).GetDateTimeOffset(),
                    updated,
                    root.TryGetProperty("shadow", out var s) && s.ValueKind == JsonValueKind.True,
                    context.ValueKind == JsonValueKind.String ? context.GetString()! : context.GetRawText(),
                    actions);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw new FeedbackLogException(source, line, e.Message);
            }
        }
    }

    private static JsonElement Required(JsonElement o, string name, JsonValueKind? kind)
    {
        if (!o.TryGetProperty(name, out var v)) throw new FormatException($"field \"{name}\" is missing");
        if (kind is { } k && v.ValueKind != k) throw new FormatException($"field \"{name}\" must be a JSON {k.ToString().ToLowerInvariant()}");
        return v;
    }

    private static int Count(JsonElement o, string name, int min = 0)
    {
        var v = Required(o, name, JsonValueKind.Number);
        if (!v.TryGetInt32(out int n) || n < min) throw new FormatException($"field \"{name}\" must be an integer ≥ {min}");
        return n;
    }
}
