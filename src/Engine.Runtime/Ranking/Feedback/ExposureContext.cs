using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Engine.Runtime.Ranking;

/// <summary>
/// The <c>context</c> of a logged exposure (docs/FEEDBACK-LOG.md, "context"): the query–item features the scoring heads
/// saw for each shown product, in shown order, plus what the request asked. Compact JSON, written off the request path:
/// <code>{"v":1,"features":["similarity",…],"items":[[0.62,3.4,…],…],"request":{"profile":true,"query":null,"category":null,"k":10}}</code>
/// </summary>
public static class ExposureContext
{
    /// <summary>Format version written in <c>"v"</c>; readers accept this one and refuse others.</summary>
    public const int Version = 1;

    /// <summary>Builds the context JSON of one served list.</summary>
    /// <param name="features">[items, <see cref="RankingFeatures.Count"/>] f32, row i = the features of the product shown at position i + 1.</param>
    /// <param name="items">Rows in <paramref name="features"/>.</param>
    /// <param name="request">The ranking request (what the shopper asked; the profile vector itself is not logged).</param>
    public static string Write(ReadOnlySpan<float> features, int items, RankRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + items * RankingFeatures.Count * 10);
        using (var w = new Utf8JsonWriter(buffer)) WriteTo(w, features, items, request);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Writes the same context JSON as <see cref="Write"/>, as UTF-8, into <paramref name="writer"/> (which the caller
    /// resets and reuses: the exposure logger keeps one writer and one buffer for all its batches, so a context costs
    /// only the bytes it is copied into, about 1 KB for a list of 10, half the size of the string form).
    /// </summary>
    /// <param name="writer">A JSON writer over the caller's buffer (not indented); flushed on return.</param>
    /// <param name="features">[items, <see cref="RankingFeatures.Count"/>] f32, row i = the features of the product shown at position i + 1.</param>
    /// <param name="items">Rows in <paramref name="features"/>.</param>
    /// <param name="request">The ranking request.</param>
    public static void WriteTo(Utf8JsonWriter writer, ReadOnlySpan<float> features, int items, RankRequest request)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(request);
        if (features.Length != items * RankingFeatures.Count)
            throw new ArgumentException($"expected {items} x {RankingFeatures.Count} features, got {features.Length}", nameof(features));
        var w = writer;
        w.WriteStartObject();
        w.WriteNumber(VersionName, Version);
        w.WriteStartArray(FeaturesName);
        foreach (var name in EncodedFeatureNames) w.WriteStringValue(name);
        w.WriteEndArray();
        w.WriteStartArray(ItemsName);
        for (int i = 0; i < items; i++)
        {
            w.WriteStartArray();
            foreach (float x in features.Slice(i * RankingFeatures.Count, RankingFeatures.Count)) WriteCompact(w, x);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartObject(RequestName);
        w.WriteBoolean(ProfileName, request.ProfileVector is not null);
        w.WriteString(QueryName, request.QueryText);
        w.WriteString(CategoryName, request.Category);
        w.WriteNumber(KName, request.K);
        w.WriteEndObject();
        w.WriteEndObject();
        w.Flush();
    }

    // Property names encoded once (Utf8JsonWriter would transcode a string name on every call).
    private static readonly JsonEncodedText VersionName = JsonEncodedText.Encode("v"), FeaturesName = JsonEncodedText.Encode("features"),
        ItemsName = JsonEncodedText.Encode("items"), RequestName = JsonEncodedText.Encode("request"), ProfileName = JsonEncodedText.Encode("profile"),
        QueryName = JsonEncodedText.Encode("query"), CategoryName = JsonEncodedText.Encode("category"), KName = JsonEncodedText.Encode("k");
    private static readonly JsonEncodedText[] EncodedFeatureNames = [.. RankingFeatures.Names.Select(n => JsonEncodedText.Encode(n))];

    /// <summary>
    /// Reads the per-position feature rows of a context, mapped by name onto <see cref="RankingFeatures"/> order:
    /// features the context lacks are 0, names this build does not know are ignored (a newer writer's extra features).
    /// </summary>
    /// <exception cref="FormatException">Not a version-1 context, or a row with the wrong length or a non-finite value.</exception>
    public static float[][] ReadItems(JsonElement context)
    {
        if (context.ValueKind != JsonValueKind.Object) throw new FormatException("context is not a JSON object");
        if (!context.TryGetProperty("v", out var v) || !v.TryGetInt32(out int version) || version != Version)
            throw new FormatException($"context \"v\" must be {Version}");
        if (!context.TryGetProperty("features", out var names) || names.ValueKind != JsonValueKind.Array)
            throw new FormatException("context has no \"features\" array");
        var slots = new int[names.GetArrayLength()];
        int n = 0;
        foreach (var name in names.EnumerateArray())
            slots[n++] = name.ValueKind == JsonValueKind.String ? IndexOf(name.GetString()!) : throw new FormatException("context \"features\" must be strings");
        if (!context.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
            throw new FormatException("context has no \"items\" array");
        var rows = new float[items.GetArrayLength()][];
        int r = 0;
        foreach (var item in items.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Array || item.GetArrayLength() != slots.Length)
                throw new FormatException($"context item {r + 1} must be an array of {slots.Length} numbers");
            var row = new float[RankingFeatures.Count];
            int i = 0;
            foreach (var x in item.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.Number || !float.IsFinite(x.GetSingle()))
                    throw new FormatException($"context item {r + 1}, feature {i + 1} is not a finite number");
                if (slots[i] >= 0) row[slots[i]] = x.GetSingle();
                i++;
            }
            rows[r++] = row;
        }
        return rows;
    }

    private static int IndexOf(string name)
    {
        for (int i = 0; i < RankingFeatures.Names.Count; i++) if (RankingFeatures.Names[i] == name) return i;
        return -1;
    }

    // Six significant digits: the heads are f32 logistic models, and features beyond that are noise (a 10-item list
    // stays under 1 KB). Formatted as UTF-8 on the stack: no string per number ("G6" of a float is at most 13 bytes,
    // "-1.23457E+38").
    private static void WriteCompact(Utf8JsonWriter w, float x)
    {
        Span<byte> text = stackalloc byte[32];
        if (!float.IsFinite(x) || !x.TryFormat(text, out int written, "G6", CultureInfo.InvariantCulture)) { text[0] = (byte)'0'; written = 1; }
        w.WriteRawValue(text[..written], skipInputValidation: true);
    }
}

