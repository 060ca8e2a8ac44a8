using System.Text.RegularExpressions;
using Engine.Control.Catalog;

namespace Engine.Control.Content;

/// <summary>Checks generated copy against the product's facts: no material, size, number or feature
/// the title, category and attributes do not state; no banned term.</summary>
public static partial class CopyValidator
{
    /// <summary>Materials the copy may only name when the product's facts name them.</summary>
    public static readonly string[] Materials =
    [
        "cotton", "wool", "merino", "silk", "linen", "leather", "suede", "denim", "polyester", "nylon", "cashmere",
        "bamboo", "hemp", "acrylic", "spandex", "elastane", "viscose", "rayon", "velvet", "fleece", "canvas",
        "steel", "stainless steel", "aluminium", "aluminum", "titanium", "copper", "brass", "gold", "silver",
        "platinum", "ceramic", "porcelain", "glass", "wood", "oak", "walnut", "teak", "pine", "plastic", "rubber",
        "silicone", "marble", "granite",
    ];

    /// <summary>Feature claims the copy may only make when the product's facts make them.</summary>
    public static readonly string[] Features =
    [
        "waterproof", "water-resistant", "water resistant", "wireless", "bluetooth", "organic", "vegan", "handmade",
        "recycled", "breathable", "machine washable", "dishwasher safe", "noise cancelling", "noise-cancelling",
        "hypoallergenic", "fair trade", "gluten-free", "gluten free", "rechargeable", "fireproof", "shatterproof",
    ];

    /// <summary>All issues found; empty when the copy is valid.</summary>
    public static IReadOnlyList<ValidationIssue> Validate(string copy, ProductInfo product, IEnumerable<string> bannedTerms)
    {
        var facts = string.Join(" ", [product.Title, product.Category, .. product.Attributes.Keys, .. product.Attributes.Values]).ToLowerInvariant();
        var text = copy.ToLowerInvariant();
        var issues = new List<ValidationIssue>();
        foreach (var term in bannedTerms)
            if (ContainsWord(text, term.ToLowerInvariant())) issues.Add(new(ValidationIssueKind.BannedTerm, term));
        foreach (var m in Materials)
            if (ContainsWord(text, m) && !ContainsWord(facts, m)) issues.Add(new(ValidationIssueKind.UnsupportedMaterial, m));
        foreach (var f in Features)
            if (ContainsWord(text, f) && !ContainsWord(facts, f)) issues.Add(new(ValidationIssueKind.UnsupportedFeature, f));
        var factNumbers = NumberRegex().Matches(facts).Select(m => Normalize(m.Value)).ToHashSet();
        foreach (var n in NumberRegex().Matches(copy).Select(m => m.Value).Distinct())
            if (!factNumbers.Contains(Normalize(n))) issues.Add(new(ValidationIssueKind.UnsupportedNumber, n));
        // Letter sizes count only in capitals ("M", "XL"): lower-case "s" or "m" are ordinary words.
        foreach (var s in SizeRegex().Matches(copy).Select(m => m.Value).Distinct())
            if (!ContainsWord(facts, s.ToLowerInvariant())) issues.Add(new(ValidationIssueKind.UnsupportedSize, s));
        return issues;
    }

    private static string Normalize(string number) => number.Replace(',', '.');

    private static bool ContainsWord(string haystack, string term)
    {
        for (var i = haystack.IndexOf(term, StringComparison.Ordinal); i >= 0; i = haystack.IndexOf(term, i + 1, StringComparison.Ordinal))
        {
            var before = i == 0 || !char.IsLetterOrDigit(haystack[i - 1]);
            var end = i + term.Length;
            var after = end == haystack.Length || !char.IsLetterOrDigit(haystack[end]);
            if (before && after) return true;
        }
        return false;
    }

    [GeneratedRegex(@"\d+(?:[.,]\d+)?")]
    private static partial Regex NumberRegex();

    [GeneratedRegex(@"\b(?:XXS|XS|S|M|L|XL|XXL|XXXL)\b")]
    private static partial Regex SizeRegex();
}
