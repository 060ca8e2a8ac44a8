using System.Globalization;
using System.Text;

namespace Engine.Runtime.Ranking;

/// <summary>
/// A seeded generator of plausible storefront products (13 categories from dresses to electronics accessories;
/// brand, material, colour, style, sizes; log-normal prices per category and brand tier; stock with some items out
/// of stock and some at backorder risk; margin; popularity; a title and a description built from the attributes),
/// so the service runs offline with no data. Same (count, seed), same products, on every machine and .NET version
/// (System.Random with a seed is a fixed algorithm).
/// </summary>
public static class DemoCatalog
{
    /// <summary>Share of products with no stock (so "in stock only" filters have something to remove).</summary>
    public const double OutOfStockShare = 0.08;

    /// <summary>Share of products with 1 to 3 units left, which carry a high backorder risk.</summary>
    public const double LowStockShare = 0.10;

    /// <summary>Generates <paramref name="count"/> products with ids "p0" … "p{count-1}".</summary>
    /// <exception cref="ArgumentOutOfRangeException">count is negative.</exception>
    public static IReadOnlyList<CatalogProduct> Generate(int count, int seed = 42)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var random = new Random(seed);
        var categories = DemoTaxonomy.Categories;
        var cumulative = new double[categories.Length]; // category shares as a cumulative distribution
        double total = 0;
        for (int i = 0; i < categories.Length; i++) cumulative[i] = total += categories[i].Share;

        var products = new CatalogProduct[count];
        for (int i = 0; i < count; i++)
            products[i] = Next(random, $"p{i}", categories[Pick(cumulative, random.NextDouble() * total)]);
        return products;
    }

    /// <summary>Names of the demo categories, in taxonomy order.</summary>
    public static IReadOnlyList<string> CategoryNames { get; } = DemoTaxonomy.Categories.Select(c => c.Name).ToArray();

    private static int Pick(double[] cumulative, double u)
    {
        for (int i = 0; i < cumulative.Length; i++) if (u < cumulative[i]) return i;
        return cumulative.Length - 1;
    }

    private static T One<T>(Random r, T[] items) => items[r.Next(items.Length)];

    private static CatalogProduct Next(Random r, string id, DemoTaxonomy.Category c)
    {
        string type = One(r, c.Types);
        string material = One(r, c.Materials);
        string colour = One(r, DemoTaxonomy.Colours);
        string style = One(r, c.Styles);
        var (brand, tier) = One(r, DemoTaxonomy.Brands);

        // Log-normal price around the category median, scaled by brand tier and material; charm-priced (…9.99).
        double gaussian = Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        double raw = c.MedianPrice * tier * DemoTaxonomy.MaterialFactor(material) * Math.Exp(c.PriceSigma * gaussian);
        float price = (float)(raw < 200 ? Math.Max(1, Math.Floor(raw)) + 0.99 : Math.Round(raw / 5) * 5 - 0.01);

        double marginNoise = (r.NextDouble() - 0.5) * 0.2;
        float margin = (float)Math.Round(Math.Clamp(c.Margin + marginNoise + (tier - 1) * 0.05, 0.05, 0.85), 3);

        int stock;
        double backorder;
        double u = r.NextDouble();
        if (u < OutOfStockShare) { stock = 0; backorder = 1; }
        else if (u < OutOfStockShare + LowStockShare) { stock = r.Next(1, 4); backorder = 0.3 + 0.5 * r.NextDouble(); }
        else
        {
            stock = 4 + (int)(196 * Math.Pow(r.NextDouble(), 2));
            backorder = r.NextDouble() < 0.05 ? 0.2 + 0.3 * r.NextDouble() : 0.1 * r.NextDouble(); // a few slow suppliers
        }
        float popularity = (float)Math.Round(Math.Pow(r.NextDouble(), 4), 4); // long tail: most products rarely viewed

        string[] sizes = PickSizes(r, c.Sizes);
        bool withStyle = r.Next(2) == 0;
        bool colourInTitle = c.Name is not ("beauty" or "kitchen");
        var title = new StringBuilder(brand);
        if (withStyle) title.Append(' ').Append(style);
        if (colourInTitle) title.Append(' ').Append(colour);
        if (!type.Contains(material, StringComparison.Ordinal)) title.Append(' ').Append(material); // not "Denim Denim Jacket"
        title.Append(' ').Append(type);

        string feature = One(r, DemoTaxonomy.Features);
        string sentence = One(r, c.Sentences)
            .Replace("{feature}", $"{Article(feature).ToLowerInvariant()} {feature}", StringComparison.Ordinal)
            .Replace("{occasion}", One(r, DemoTaxonomy.Occasions), StringComparison.Ordinal);
        // "A classic denim jacket …", but "Tapered joggers …" (no article before a plural).
        bool plural = type.EndsWith('s') && !type.EndsWith("ss", StringComparison.Ordinal);
        var description = new StringBuilder()
            .Append(plural ? char.ToUpperInvariant(style[0]) + style[1..] : $"{Article(style)} {style}").Append(' ').Append(type)
            .Append(" in ").Append(colour).Append(' ').Append(material).Append(" by ").Append(brand).Append(". ")
            .Append(sentence);
        if (sizes.Length > 1) description.Append(" Available in sizes ").Append(sizes[0]).Append(" to ").Append(sizes[^1]).Append('.');

        return new CatalogProduct
        {
            Id = id,
            Title = TitleCase(title.ToString()),
            Description = description.ToString(),
            Category = c.Name,
            ProductType = type,
            Brand = brand,
            Material = material,
            Colour = colour,
            Style = style,
            Sizes = sizes,
            Price = price,
            Stock = stock,
            Margin = margin,
            BackorderRisk = (float)Math.Round(backorder, 3),
            Popularity = popularity,
        };
    }

    /// <summary>A contiguous run of at least 3 sizes (or the single "one size").</summary>
    private static string[] PickSizes(Random r, string[] all)
    {
        if (all.Length < 4) return all;
        int first = r.Next(0, all.Length - 3);
        int last = r.Next(first + 2, all.Length);
        return all[first..(last + 1)];
    }

    private static string Article(string word) => "aeiou".Contains(word[0]) ? "An" : "A";

    private static string TitleCase(string s)
    {
        var words = s.Split(' ');
        for (int i = 0; i < words.Length; i++)
            words[i] = words[i] switch
            {
                "tpu" => "TPU",
                "usb-c" => "USB-C",
                "" or "&" => words[i],
                _ => char.ToUpper(words[i][0], CultureInfo.InvariantCulture) + words[i][1..],
            };
        return string.Join(' ', words);
    }
}
