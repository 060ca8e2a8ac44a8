using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

/// <summary>The exposure context's UTF-8 writer (<see cref="ExposureContext.WriteTo"/>, one writer and buffer reused by
/// the exposure logger) writes exactly the text of the documented form (docs/FEEDBACK-LOG.md §2).</summary>
public sealed class ExposureContextTests
{
    /// <summary>The context as the string form wrote it before the UTF-8 writer (float.ToString("G6") per number).</summary>
    private static string Reference(float[] features, int items, RankRequest request)
    {
        static string S(string? s) => s is null ? "null" : JsonSerializer.Serialize(s);
        var sb = new StringBuilder("{\"v\":1,\"features\":[");
        sb.Append(string.Join(",", RankingFeatures.Names.Select(n => S(n)))).Append("],\"items\":[");
        for (int i = 0; i < items; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append('[').Append(string.Join(",", features.Skip(i * RankingFeatures.Count).Take(RankingFeatures.Count)
                .Select(x => float.IsFinite(x) ? x.ToString("G6", CultureInfo.InvariantCulture) : "0"))).Append(']');
        }
        sb.Append("],\"request\":{\"profile\":").Append(request.ProfileVector is null ? "false" : "true")
          .Append(",\"query\":").Append(S(request.QueryText)).Append(",\"category\":").Append(S(request.Category))
          .Append(",\"k\":").Append(request.K).Append("}}");
        return sb.ToString();
    }

    [Fact]
    public void A_reused_writer_writes_the_documented_text_on_random_inputs()
    {
        var rng = new Random(5);
        var buffer = new ArrayBufferWriter<byte>(64);
        using var writer = new Utf8JsonWriter(buffer);
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -float.Epsilon, 0f, -0f, 1e-7f, 123456789f];
        for (int trial = 0; trial < 200; trial++)
        {
            int items = rng.Next(0, 15);
            var features = new float[items * RankingFeatures.Count];
            for (int i = 0; i < features.Length; i++)
                features[i] = rng.Next(8) == 0 ? specials[rng.Next(specials.Length)] : (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-6, 7)));
            var request = new RankRequest
            {
                K = Math.Max(1, items),
                QueryText = rng.Next(3) == 0 ? null : $"summer \"dress\" é {trial}",
                Category = rng.Next(2) == 0 ? null : "shoes/€",
                ProfileVector = rng.Next(2) == 0 ? null : [1f, 0f],
            };
            buffer.ResetWrittenCount();
            writer.Reset(buffer);
            ExposureContext.WriteTo(writer, features, items, request);
            string expected = Reference(features, items, request);
            Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
            Assert.Equal(expected, ExposureContext.Write(features, items, request));
            using var doc = JsonDocument.Parse(buffer.WrittenMemory);
            Assert.Equal(items, ExposureContext.ReadItems(doc.RootElement).Length);
        }
    }
}
