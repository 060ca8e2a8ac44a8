using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Runtime.Ranking;

/// <summary>
/// One logged outcome of an exposure, for training: the features the pipeline saw and what the shopper did next.
/// Later stages imply the earlier ones (a purchase was added to the cart, which was clicked).
/// </summary>
public readonly record struct FeedbackRecord(float[] Features, bool Clicked, bool AddedToCart, bool Purchased, bool Returned);

/// <summary>
/// The four scoring heads: p(click), p(add-to-cart | click), p(purchase | add-to-cart), p(return | purchase),
/// with a version string. Stored as a JSON file (see Ranking/README.md):
/// <code>{"version":"…","features":["similarity",…],"heads":{"click":{"bias":b,"weights":[…]},"addToCart":…,"purchase":…,"return":…}}</code>
/// </summary>
public sealed class ScoringHeads
{
    public ScoringHeads(string version, LogisticHead click, LogisticHead addToCart, LogisticHead purchase, LogisticHead @return)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        foreach (var h in new[] { click, addToCart, purchase, @return })
            if (h.Weights.Count != RankingFeatures.Count)
                throw new ArgumentException($"each head needs {RankingFeatures.Count} weights (one per RankingFeatures name)");
        Version = version;
        Click = click;
        AddToCart = addToCart;
        Purchase = purchase;
        Return = @return;
    }

    /// <summary>Version of this weight set; part of every <see cref="RankResult.ModelVersion"/>.</summary>
    public string Version { get; }
    public LogisticHead Click { get; }
    public LogisticHead AddToCart { get; }
    public LogisticHead Purchase { get; }
    public LogisticHead Return { get; }

    /// <summary>
    /// Hand-set defaults used until a trained file is given: clicks follow similarity and popularity and shy away from
    /// dear-for-their-kind items; carts and purchases need stock and suffer from backorder risk; returns rise with
    /// price and fall with similarity (the shopper got what they looked for). Order: <see cref="RankingFeatures.Names"/>.
    /// </summary>
    public static ScoringHeads Default { get; } = new("heads-default-1",
        //                   sim    logP   relP  margin  cat   pop   backord inStock
        new LogisticHead(-4.5f, [4.0f, -0.15f, -0.4f, 0f, 0.6f, 1.5f, 0f, 0.5f]),
        new LogisticHead(-2.5f, [1.5f, -0.2f, -0.6f, 0f, 0.3f, 0.5f, -0.8f, 1.5f]),
        new LogisticHead(-0.5f, [0.5f, -0.1f, -0.3f, 0f, 0f, 0.2f, -1.5f, 1.0f]),
        new LogisticHead(-2.2f, [-1.0f, 0.15f, 0.2f, 0f, -0.2f, -0.3f, 0.5f, 0f]));

    /// <summary>
    /// Trains all four heads from logged feedback: click on every record, add-to-cart on the clicked ones, purchase on
    /// the carted ones, return on the purchased ones. A stage with no examples, or with one outcome only, keeps the
    /// head of <paramref name="fallback"/> (default: <see cref="Default"/>).
    /// </summary>
    public static ScoringHeads Train(IReadOnlyList<FeedbackRecord> feedback, string version, ScoringHeads? fallback = null, LogisticFitOptions? options = null)
    {
        fallback ??= Default;
        LogisticHead FitOr(IEnumerable<LabeledExample> data, LogisticHead old)
        {
            var list = data.ToList();
            bool both = list.Any(e => e.Label) && list.Any(e => !e.Label);
            return both ? LogisticRegression.Fit(list, options) : old;
        }
        return new ScoringHeads(version,
            FitOr(feedback.Select(f => new LabeledExample(f.Features, f.Clicked)), fallback.Click),
            FitOr(feedback.Where(f => f.Clicked).Select(f => new LabeledExample(f.Features, f.AddedToCart)), fallback.AddToCart),
            FitOr(feedback.Where(f => f.AddedToCart).Select(f => new LabeledExample(f.Features, f.Purchased)), fallback.Purchase),
            FitOr(feedback.Where(f => f.Purchased).Select(f => new LabeledExample(f.Features, f.Returned)), fallback.Return));
    }

    // ---- file format ----

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    private sealed class HeadDto
    {
        public float Bias { get; set; }
        public float[]? Weights { get; set; }
    }

    private sealed class HeadsDto
    {
        public string? Version { get; set; }
        public string[]? Features { get; set; }
        public Dictionary<string, HeadDto>? Heads { get; set; }
    }

    private static readonly string[] HeadNames = ["click", "addToCart", "purchase", "return"];

    /// <summary>Writes the heads as JSON (overwrites).</summary>
    public void Save(string path) => File.WriteAllText(path, ToJson());

    /// <summary>The heads file's JSON text.</summary>
    public string ToJson()
    {
        var heads = new[] { Click, AddToCart, Purchase, Return };
        var dto = new HeadsDto
        {
            Version = Version,
            Features = [.. RankingFeatures.Names],
            Heads = HeadNames.Zip(heads).ToDictionary(p => p.First, p => new HeadDto { Bias = p.Second.Bias, Weights = [.. p.Second.Weights] }),
        };
        return JsonSerializer.Serialize(dto, Json);
    }

    /// <summary>Reads a heads file.</summary>
    /// <exception cref="InvalidDataException">Malformed JSON, a missing head, an unknown feature name, a weight count that
    /// does not match the feature list, or a non-finite weight (the message names the file).</exception>
    public static ScoringHeads Load(string path) => FromJson(File.ReadAllText(path), Path.GetFileName(path));

    /// <summary>Parses the heads file's JSON; features are matched by name, and ones the file lacks get weight 0.</summary>
    public static ScoringHeads FromJson(string json, string source = "heads")
    {
        HeadsDto? dto;
        try { dto = JsonSerializer.Deserialize<HeadsDto>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not a scoring heads JSON file ({e.Message})"); }
        if (dto?.Version is not { Length: > 0 } version) throw new InvalidDataException($"{source}: field \"version\" is missing");
        if (dto.Features is null || dto.Heads is null) throw new InvalidDataException($"{source}: fields \"features\" and \"heads\" are required");
        var slots = new int[dto.Features.Length];
        for (int i = 0; i < slots.Length; i++)
        {
            slots[i] = RankingFeatures.Names.ToList().IndexOf(dto.Features[i]);
            if (slots[i] < 0) throw new InvalidDataException($"{source}: unknown feature \"{dto.Features[i]}\" (known: {string.Join(", ", RankingFeatures.Names)})");
        }
        var heads = new LogisticHead[HeadNames.Length];
        for (int h = 0; h < HeadNames.Length; h++)
        {
            if (!dto.Heads.TryGetValue(HeadNames[h], out var head) || head.Weights is null)
                throw new InvalidDataException($"{source}: head \"{HeadNames[h]}\" is missing");
            if (head.Weights.Length != slots.Length)
                throw new InvalidDataException($"{source}: head \"{HeadNames[h]}\" has {head.Weights.Length} weights for {slots.Length} features");
            var weights = new float[RankingFeatures.Count];
            for (int i = 0; i < slots.Length; i++) weights[slots[i]] = head.Weights[i];
            if (!float.IsFinite(head.Bias) || weights.Any(w => !float.IsFinite(w)))
                throw new InvalidDataException($"{source}: head \"{HeadNames[h]}\" has a non-finite weight");
            heads[h] = new LogisticHead(head.Bias, weights);
        }
        return new ScoringHeads(version, heads[0], heads[1], heads[2], heads[3]);
    }
}
