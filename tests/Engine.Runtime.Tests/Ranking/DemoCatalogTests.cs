using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

public sealed class DemoCatalogTests
{
    [Fact]
    public void Same_seed_gives_the_same_products_and_another_seed_different_ones()
    {
        var a = DemoCatalog.Generate(300, 5);
        var b = DemoCatalog.Generate(300, 5);
        var c = DemoCatalog.Generate(300, 6);
        Assert.Equal(a.Select(p => (p.Id, p.Title, p.Description, p.Price, p.Stock, p.Margin)), b.Select(p => (p.Id, p.Title, p.Description, p.Price, p.Stock, p.Margin)));
        Assert.NotEqual(a.Select(p => p.Title), c.Select(p => p.Title));
    }

    [Fact]
    public void Products_are_plausible_and_cover_every_category()
    {
        var products = DemoCatalog.Generate(5000, 42);
        Assert.Equal(5000, products.Select(p => p.Id).Distinct().Count());
        Assert.Equal(DemoCatalog.CategoryNames.Order(), products.Select(p => p.Category).Distinct().Order());
        foreach (var p in products)
        {
            Assert.True(p.Price > 0 && float.IsFinite(p.Price), p.Id);
            Assert.InRange(p.Margin, 0.05f, 0.85f);
            Assert.InRange(p.BackorderRisk, 0f, 1f);
            Assert.InRange(p.Popularity, 0f, 1f);
            Assert.Contains(p.ProductType, p.Title, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(p.ProductType, p.Description, StringComparison.Ordinal);
            Assert.NotEmpty(p.Sizes);
        }
        // Out of stock and low stock at about their designed shares.
        double outOfStock = products.Count(p => !p.InStock) / 5000.0;
        Assert.InRange(outOfStock, DemoCatalog.OutOfStockShare - 0.02, DemoCatalog.OutOfStockShare + 0.02);
        Assert.True(products.Count(p => p.InStock && p.BackorderRisk >= 0.3f) > 300);
        // Category-appropriate prices: outerwear costs more than accessories, in median.
        float Median(string category) => products.Where(p => p.Category == category).Select(p => p.Price).Order().ElementAt(products.Count(p => p.Category == category) / 2);
        Assert.True(Median("outerwear") > 2 * Median("accessories"), $"{Median("outerwear")} vs {Median("accessories")}");
        Assert.InRange(Median("dresses"), 35f, 90f);
    }

    [Fact]
    public void Negative_count_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DemoCatalog.Generate(-1));
        Assert.Empty(DemoCatalog.Generate(0));
    }
}
