using System.Globalization;
using System.Text.RegularExpressions;

namespace Engine.Runtime.Ranking;

/// <summary>
/// A search text split into what to embed and the price range it asked for. Bounds are inclusive, as
/// <see cref="ProductFilter"/>'s: "under $50" gives MaxPrice = the float just below 50, "up to $50" gives 50.
/// </summary>
public sealed record PriceQuery(string Text, float MinPrice, float MaxPrice)
{
    /// <summary>True when the text named a price bound.</summary>
    public bool HasPriceFilter => MinPrice > 0 || !float.IsPositiveInfinity(MaxPrice);
}

/// <summary>
/// Finds price constraints in a shopper's search text and removes them from the text to embed. Recognized
/// (case-insensitive; amounts like 50, $50, 49.99, 1,200, 1.5k, "50 dollars", "50 usd", "50 bucks", €50, £50):
/// <list type="bullet">
/// <item>below, exclusive: "under $50", "below 50", "less than 50", "cheaper than 50", "&lt; 50"</item>
/// <item>below, inclusive: "up to $50", "at most 50", "no more than 50", "max 50", "within $50", "budget $50",
///   "$50 or less", "50 dollars and under", "≤ 50"</item>
/// <item>above, exclusive: "over $100", "above 100", "more than 100", "greater than 100", "&gt; 100"</item>
/// <item>above, inclusive: "at least $100", "from $100", "min 100", "starting at 100", "$100 and up", "$100+",
///   "100 dollars or more", "≥ 100"</item>
/// <item>ranges, inclusive: "$20-$40", "$20 - 40", "20-40 dollars", "$20 to $40", "between 20 and 40",
///   "from $20 to $40"</item>
/// <item>around: "around $50", "about 50", "approximately 50", "~$50": ±20%</item>
/// </list>
/// A bare number with neither a currency mark nor a price word ("size 10 boots", "iphone 15 case") is left alone.
/// Several constraints intersect ("over $20 under $50"); a range that ends below its start is an empty range.
/// </summary>
public static partial class PriceQueryParser
{
    /// <summary>Half-width of "around $X": the range X·(1 ± this).</summary>
    public const float AroundTolerance = 0.2f;

    // An amount: digits with optional thousands commas, decimals and a k (thousands) suffix.
    private const string Number = @"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?k\b)?";
    private const string Prefix = @"(?:\$|usd\s?|€|£|eur\s?)";
    private const string Suffix = @"(?:\$|\s?(?:usd|dollars?|bucks|eur|euros?)\b)";
    // Amount where a price word gives the context: currency marks optional.
    private const string Loose = $@"{Prefix}?\s?(?<{{0}}>{Number}){Suffix}?";
    // Amount that must carry a currency mark itself.
    private const string Strict = $@"(?:{Prefix}\s?(?<{{0}}>{Number}){Suffix}?|(?<{{0}}>{Number}){Suffix})";

    private static string L(string group) => Loose.Replace("{0}", group, StringComparison.Ordinal);
    private static string S(string group) => Strict.Replace("{0}", group, StringComparison.Ordinal);

    private enum Kind { Range, MaxExclusive, MaxInclusive, MinExclusive, MinInclusive, Around }

    private static readonly (Regex Pattern, Kind Kind)[] Rules =
    [
        (Make($@"\bbetween\s+{L("a")}\s+and\s+{L("b")}"), Kind.Range),
        (Make($@"\bfrom\s+{L("a")}\s+to\s+{L("b")}"), Kind.Range),
        (Make($@"(?:{S("a")}\s*(?:-|–|—|to)\s*{L("b")}|{L("a")}\s*(?:-|–|—|to)\s*{S("b")})"), Kind.Range),
        (Make($@"(?:\b(?:under|below|less\s+than|cheaper\s+than|lower\s+than)|<(?!=))\s*{L("a")}"), Kind.MaxExclusive),
        (Make($@"(?:\b(?:up\s+to|at\s+most|no\s+more\s+than|not\s+more\s+than|max(?:imum)?|within|budget(?:\s+of)?)|<=|≤)\s*{L("a")}"), Kind.MaxInclusive),
        (Make($@"{L("a")}\s*(?:or\s+less|or\s+under|or\s+cheaper|and\s+under|and\s+below|or\s+below|max\b)"), Kind.MaxInclusive),
        (Make($@"(?:\b(?:over|above|more\s+than|greater\s+than|higher\s+than)|>(?!=))\s*{L("a")}"), Kind.MinExclusive),
        (Make($@"(?:\b(?:at\s+least|from|min(?:imum)?|starting\s+at|starting\s+from|no\s+less\s+than)|>=|≥)\s*{L("a")}"), Kind.MinInclusive),
        (Make($@"{L("a")}\s*(?:or\s+more|and\s+up\b|and\s+above|or\s+above|or\s+over|plus\b)"), Kind.MinInclusive),
        (Make($@"{S("a")}\s*\+"), Kind.MinInclusive),
        (Make($@"(?:\b(?:around|about|approximately|approx\.?|roughly)|~)\s*{L("a")}"), Kind.Around),
    ];

    private static Regex Make(string pattern) =>
        new(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture, TimeSpan.FromSeconds(1));

    /// <summary>Parses <paramref name="text"/>; never throws for any string (an empty or price-free text gives no bounds).</summary>
    public static PriceQuery Parse(string? text) =>
        string.IsNullOrWhiteSpace(text) ? NoText : ParseText(text); // no text (every profile-only Recommend): nothing allocated

    private static readonly PriceQuery NoText = new("", 0, float.PositiveInfinity);

    // Separate from Parse: the matchers' closure over min/max is allocated on entry to the method that declares them.
    private static PriceQuery ParseText(string text)
    {
        float min = 0, max = float.PositiveInfinity;
        string rest = text;
        foreach (var (pattern, kind) in Rules)
        {
            rest = pattern.Replace(rest, m =>
            {
                float a = Amount(m.Groups["a"].Value);
                float b = m.Groups["b"].Success ? Amount(m.Groups["b"].Value) : a;
                if (!float.IsFinite(a) || !float.IsFinite(b)) return m.Value;
                switch (kind)
                {
                    case Kind.Range: min = MathF.Max(min, a); max = MathF.Min(max, b); break;
                    case Kind.MaxExclusive: max = MathF.Min(max, MathF.BitDecrement(a)); break;
                    case Kind.MaxInclusive: max = MathF.Min(max, a); break;
                    case Kind.MinExclusive: min = MathF.Max(min, MathF.BitIncrement(a)); break;
                    case Kind.MinInclusive: min = MathF.Max(min, a); break;
                    case Kind.Around: min = MathF.Max(min, a * (1 - AroundTolerance)); max = MathF.Min(max, a * (1 + AroundTolerance)); break;
                }
                return " ";
            });
        }
        return new PriceQuery(Tidy(rest), min, max);
    }

    private static float Amount(string s)
    {
        s = s.Replace(",", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal);
        double scale = 1;
        if (s.EndsWith('k') || s.EndsWith('K')) { scale = 1000; s = s[..^1]; }
        return double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) ? (float)(v * scale) : float.NaN;
    }

    /// <summary>Collapses the spaces left where phrases were removed and drops dangling joiners ("dresses and").</summary>
    private static string Tidy(string s)
    {
        s = Spaces().Replace(s, " ").Trim();
        s = DanglingJoiner().Replace(s, "");
        return s.Trim(' ', ',', '.', ';', '-');
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"(?:\s+(?:and|for|priced|price|at|with|in|that|are|is|costing|cost)\b)+\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex DanglingJoiner();
}
