using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Runtime.Ranking;

/// <summary>Progress of a long catalog operation (writing, embedding): units done out of a total.</summary>
public readonly record struct WorkProgress(long Done, long Total);

/// <summary>A catalog read from a file, with the SHA-256 of the file's bytes (the catalog version).</summary>
public sealed record LoadedCatalog(IReadOnlyList<CatalogProduct> Products, string Sha256)
{
    /// <summary>Short catalog version for model version strings: the first 12 hex digits of the hash.</summary>
    public string Version => Sha256[..12];
}

/// <summary>
/// The catalog file: JSON lines, UTF-8. Line 1 is the header <c>{"format":"engine-catalog","version":1,"count":N}</c>;
/// each following line is one <see cref="CatalogProduct"/> in camelCase (id, title, description, category,
/// productType, brand, material, colour, style, sizes, price, stock, margin, backorderRisk, popularity).
/// Unknown fields are ignored (newer writers may add some); id, title, category and price are required.
/// Specified in src/Engine.Runtime/Ranking/README.md.
/// </summary>
public static class CatalogFile
{
    /// <summary>Value of the header's "format" field.</summary>
    public const string Format = "engine-catalog";

    /// <summary>The file version this code writes and reads. History: 1 = first version.</summary>
    public const int Version = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.Strict,
    };

    private sealed record Header(string Format, int Version, int Count);

    private sealed class ProductLine
    {
        public string? Id { get; set; }
        public string? Title { get; set; }
        public string? Description { get; set; }
        public string? Category { get; set; }
        public string? ProductType { get; set; }
        public string? Brand { get; set; }
        public string? Material { get; set; }
        public string? Colour { get; set; }
        public string? Style { get; set; }
        public string[]? Sizes { get; set; }
        public float? Price { get; set; }
        public int Stock { get; set; }
        public float Margin { get; set; }
        public float BackorderRisk { get; set; }
        public float Popularity { get; set; }
    }

    /// <summary>Writes <paramref name="products"/> to <paramref name="path"/> (overwritten), reporting lines written.</summary>
    public static void Write(string path, IReadOnlyList<CatalogProduct> products, IProgress<WorkProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(products);
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
        {
            writer.NewLine = "\n";
            writer.WriteLine(JsonSerializer.Serialize(new Header(Format, Version, products.Count), Json));
            for (int i = 0; i < products.Count; i++)
            {
                var p = products[i];
                writer.WriteLine(JsonSerializer.Serialize(new ProductLine
                {
                    Id = p.Id, Title = p.Title, Description = p.Description, Category = p.Category, ProductType = p.ProductType,
                    Brand = p.Brand, Material = p.Material, Colour = p.Colour, Style = p.Style, Sizes = [.. p.Sizes],
                    Price = p.Price, Stock = p.Stock, Margin = p.Margin, BackorderRisk = p.BackorderRisk, Popularity = p.Popularity,
                }, Json));
                if (progress is not null && (i & 1023) == 1023) progress.Report(new WorkProgress(i + 1, products.Count));
            }
        }
        File.Move(temp, path, overwrite: true); // a reader never sees a half-written catalog
        progress?.Report(new WorkProgress(products.Count, products.Count));
    }

    /// <summary>Reads and validates a catalog file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a catalog file, or a line that is not a valid product (the message
    /// names the file and the line).</exception>
    public static LoadedCatalog Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        string sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        string name = Path.GetFileName(path);
        using var reader = new StreamReader(new MemoryStream(bytes), new UTF8Encoding(false, throwOnInvalidBytes: true));

        string? first = reader.ReadLine();
        Header? header;
        try { header = first is null ? null : JsonSerializer.Deserialize<Header>(first, Json); }
        catch (JsonException) { header = null; }
        if (header is null || header.Format != Format)
            throw new InvalidDataException($"{name} line 1: not an engine catalog (expected the header {{\"format\":\"{Format}\",\"version\":{Version},...}})");
        if (header.Version != Version)
            throw new InvalidDataException($"{name} line 1: catalog version {header.Version} is not supported (this build reads version {Version})");

        var products = new List<CatalogProduct>(Math.Max(0, header.Count));
        var ids = new HashSet<string>(StringComparer.Ordinal);
        int lineNumber = 1;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0) continue;
            ProductLine? p;
            try { p = JsonSerializer.Deserialize<ProductLine>(line, Json); }
            catch (JsonException e) { throw new InvalidDataException($"{name} line {lineNumber}: not a valid product JSON object ({e.Message})"); }
            var product = Validate(p, name, lineNumber);
            if (!ids.Add(product.Id)) throw new InvalidDataException($"{name} line {lineNumber}: duplicate product id \"{product.Id}\"");
            products.Add(product);
        }
        if (header.Count != products.Count)
            throw new InvalidDataException($"{name}: the header says {header.Count} products, the file holds {products.Count} (truncated?)");
        return new LoadedCatalog(products, sha);
    }

    private static CatalogProduct Validate(ProductLine? p, string name, int line)
    {
        string Where(string field) => $"{name} line {line}: field \"{field}\"";
        if (p is null) throw new InvalidDataException($"{name} line {line}: null product");
        if (string.IsNullOrWhiteSpace(p.Id)) throw new InvalidDataException($"{Where("id")} is missing or empty");
        if (string.IsNullOrWhiteSpace(p.Title)) throw new InvalidDataException($"{Where("title")} is missing or empty");
        if (string.IsNullOrWhiteSpace(p.Category)) throw new InvalidDataException($"{Where("category")} is missing or empty");
        if (p.Price is not { } price || !float.IsFinite(price) || price < 0) throw new InvalidDataException($"{Where("price")} must be a finite number ≥ 0");
        if (p.Stock < 0) throw new InvalidDataException($"{Where("stock")} must be ≥ 0");
        CheckUnit(p.Margin, Where("margin"));
        CheckUnit(p.BackorderRisk, Where("backorderRisk"));
        CheckUnit(p.Popularity, Where("popularity"));
        return new CatalogProduct
        {
            Id = p.Id, Title = p.Title, Description = p.Description ?? "", Category = p.Category.ToLowerInvariant(),
            ProductType = p.ProductType ?? "", Brand = p.Brand ?? "", Material = p.Material ?? "", Colour = p.Colour ?? "",
            Style = p.Style ?? "", Sizes = p.Sizes ?? [], Price = price, Stock = p.Stock, Margin = p.Margin,
            BackorderRisk = p.BackorderRisk, Popularity = p.Popularity,
        };
    }

    private static void CheckUnit(float value, string where)
    {
        if (!(value >= 0 && value <= 1)) throw new InvalidDataException($"{where} must be in [0, 1]");
    }
}
