namespace Engine.Control.Content;

/// <summary>What one piece of generated copy depends on: a change of any part is a new cache entry.</summary>
/// <param name="ProductId">The product described.</param>
/// <param name="Template">Prompt template name.</param>
/// <param name="ModelVersion">Decoder model version.</param>
/// <param name="CatalogVersion">The product's <see cref="Catalog.ProductInfo.Version"/>: a product change
/// makes older entries unreachable, which is the invalidation.</param>
[GenerateSerializer, Immutable]
public sealed record ContentKey(
    [property: Id(0)] string ProductId,
    [property: Id(1)] string Template,
    [property: Id(2)] string ModelVersion,
    [property: Id(3)] long CatalogVersion)
{
    private const char Separator = '|';

    /// <summary>The grain key: the four parts joined by '|'.</summary>
    /// <exception cref="ArgumentException">A part contains '|'.</exception>
    public string ToGrainKey()
    {
        foreach (var part in (ReadOnlySpan<string>)[ProductId, Template, ModelVersion])
            if (string.IsNullOrEmpty(part) || part.Contains(Separator))
                throw new ArgumentException($"content key part '{part}' must be non-empty and must not contain '{Separator}'");
        return string.Join(Separator, ProductId, Template, ModelVersion, CatalogVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Parses <see cref="ToGrainKey"/>'s output.</summary>
    public static ContentKey Parse(string grainKey)
    {
        var parts = grainKey.Split(Separator);
        if (parts.Length != 4 || !long.TryParse(parts[3], System.Globalization.CultureInfo.InvariantCulture, out var version))
            throw new FormatException($"'{grainKey}' is not a content key (product|template|model|catalogVersion)");
        return new ContentKey(parts[0], parts[1], parts[2], version);
    }
}
