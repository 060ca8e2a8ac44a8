namespace Engine.Runtime.Ranking;

/// <summary>
/// One product of a storefront catalog: what the ranking pipeline reads (price, stock, margin, backorder risk,
/// popularity) and the attributes its text is built from. A line of the catalog file (see Ranking/README.md).
/// </summary>
public sealed class CatalogProduct
{
    /// <summary>Unique product id (the key of the index and of every answer).</summary>
    public required string Id { get; init; }

    /// <summary>Short display title, e.g. "Marlowe Red Linen Midi Dress".</summary>
    public required string Title { get; init; }

    /// <summary>One or two sentences built from the attributes.</summary>
    public string Description { get; init; } = "";

    /// <summary>Top-level category, lower case (e.g. "dresses", "kitchen"); the filter facet.</summary>
    public required string Category { get; init; }

    /// <summary>What the product is within its category (e.g. "midi dress", "frying pan").</summary>
    public string ProductType { get; init; } = "";

    public string Brand { get; init; } = "";
    public string Material { get; init; } = "";
    public string Colour { get; init; } = "";

    /// <summary>A style or occasion word (e.g. "summer", "office", "nonstick").</summary>
    public string Style { get; init; } = "";

    /// <summary>Sizes offered (apparel letters, EU shoe sizes, "one size").</summary>
    public IReadOnlyList<string> Sizes { get; init; } = [];

    /// <summary>Price in the store currency, finite and ≥ 0.</summary>
    public required float Price { get; init; }

    /// <summary>Units on hand; 0 is out of stock.</summary>
    public int Stock { get; init; }

    /// <summary>Gross margin as a fraction of the price, in [0, 1].</summary>
    public float Margin { get; init; }

    /// <summary>Probability in [0, 1] that an order cannot ship from stock on time (low stock, slow supplier).</summary>
    public float BackorderRisk { get; init; }

    /// <summary>Relative popularity in [0, 1] (share of recent views, scaled): a prior for cold shoppers.</summary>
    public float Popularity { get; init; }

    /// <summary>True when at least one unit is on hand.</summary>
    public bool InStock => Stock > 0;

    /// <summary>The text the encoder embeds for this product: title, then description.</summary>
    public string EmbeddingText => Description.Length == 0 ? Title : $"{Title}. {Description}";
}
