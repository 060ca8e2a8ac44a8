using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

public sealed class CatalogFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-catalog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Written_catalog_reads_back_field_for_field_with_a_stable_hash()
    {
        var products = DemoCatalog.Generate(200, 3);
        string path = PathOf("c.jsonl");
        CatalogFile.Write(path, products);
        var loaded = CatalogFile.Read(path);
        Assert.Equal(200, loaded.Products.Count);
        for (int i = 0; i < products.Count; i++)
        {
            var (a, b) = (products[i], loaded.Products[i]);
            Assert.Equal((a.Id, a.Title, a.Description, a.Category, a.ProductType, a.Brand, a.Material, a.Colour, a.Style),
                         (b.Id, b.Title, b.Description, b.Category, b.ProductType, b.Brand, b.Material, b.Colour, b.Style));
            Assert.Equal((a.Price, a.Stock, a.Margin, a.BackorderRisk, a.Popularity), (b.Price, b.Stock, b.Margin, b.BackorderRisk, b.Popularity));
            Assert.Equal(a.Sizes, b.Sizes);
        }
        CatalogFile.Write(PathOf("d.jsonl"), products);
        Assert.Equal(loaded.Sha256, CatalogFile.Read(PathOf("d.jsonl")).Sha256);
        Assert.Equal(64, loaded.Sha256.Length);
    }

    [Theory]
    [InlineData("{\"id\":\"x\",\"title\":\"T\",\"category\":\"bags\",\"price\":1", "line 3: not a valid product")]
    [InlineData("{\"id\":\"x\",\"title\":\"T\",\"category\":\"bags\",\"price\":-1}", "line 3: field \"price\"")]
    [InlineData("{\"id\":\"x\",\"title\":\"T\",\"category\":\"bags\"}", "line 3: field \"price\"")]
    [InlineData("{\"title\":\"T\",\"category\":\"bags\",\"price\":3}", "line 3: field \"id\"")]
    [InlineData("{\"id\":\"p0\",\"title\":\"T\",\"category\":\"bags\",\"price\":3}", "line 3: duplicate product id \"p0\"")]
    [InlineData("{\"id\":\"x\",\"title\":\"T\",\"category\":\"bags\",\"price\":3,\"margin\":1.5}", "line 3: field \"margin\"")]
    [InlineData("{\"id\":\"x\",\"title\":\"T\",\"category\":\"bags\",\"price\":\"cheap\"}", "line 3: not a valid product")]
    public void A_bad_product_line_is_reported_with_its_line_number(string badLine, string expected)
    {
        string path = PathOf("bad.jsonl");
        File.WriteAllLines(path,
        [
            "{\"format\":\"engine-catalog\",\"version\":1,\"count\":2}",
            "{\"id\":\"p0\",\"title\":\"Tote\",\"category\":\"bags\",\"price\":20}",
            badLine,
        ]);
        var e = Assert.Throws<InvalidDataException>(() => CatalogFile.Read(path));
        Assert.Contains("bad.jsonl " + expected, e.Message);
    }

    [Fact]
    public void Not_a_catalog_wrong_version_and_truncated_files_are_rejected()
    {
        File.WriteAllText(PathOf("a"), "hello\n");
        Assert.Contains("not an engine catalog", Assert.Throws<InvalidDataException>(() => CatalogFile.Read(PathOf("a"))).Message);
        File.WriteAllText(PathOf("b"), "{\"format\":\"engine-catalog\",\"version\":9,\"count\":0}\n");
        Assert.Contains("version 9", Assert.Throws<InvalidDataException>(() => CatalogFile.Read(PathOf("b"))).Message);
        CatalogFile.Write(PathOf("c"), DemoCatalog.Generate(10));
        File.WriteAllLines(PathOf("c"), File.ReadAllLines(PathOf("c")).Take(6));
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => CatalogFile.Read(PathOf("c"))).Message);
        File.WriteAllText(PathOf("e"), "");
        Assert.Throws<InvalidDataException>(() => CatalogFile.Read(PathOf("e")));
        Assert.Throws<FileNotFoundException>(() => CatalogFile.Read(PathOf("missing")));
    }

    [Fact]
    public void Index_cache_is_reused_for_the_same_catalog_and_rebuilt_when_it_changes()
    {
        string path = PathOf("cat.jsonl");
        CatalogFile.Write(path, DemoCatalog.Generate(150, 1));
        var embedder = new HashingTextEmbedder(64);
        using (var first = CatalogIndex.LoadOrBuild(path, CatalogFile.Read(path), embedder, CatalogEmbeddingMode.FullText, RankingFixture.Scanner(), null, out bool built))
        {
            Assert.True(built);
            Assert.Equal(150, first.Count);
        }
        Assert.True(File.Exists(path + CatalogIndex.IndexSuffix));
        using (var second = CatalogIndex.LoadOrBuild(path, CatalogFile.Read(path), embedder, CatalogEmbeddingMode.FullText, RankingFixture.Scanner(), null, out bool built))
            Assert.False(built);
        // Another mode or another catalog: rebuilt.
        using (CatalogIndex.LoadOrBuild(path, CatalogFile.Read(path), embedder, CatalogEmbeddingMode.ComposedAttributes, RankingFixture.Scanner(), null, out bool built))
            Assert.True(built);
        CatalogFile.Write(path, DemoCatalog.Generate(151, 1));
        using (var changed = CatalogIndex.LoadOrBuild(path, CatalogFile.Read(path), embedder, CatalogEmbeddingMode.ComposedAttributes, RankingFixture.Scanner(), null, out bool built))
        {
            Assert.True(built);
            Assert.Equal(151, changed.Count);
        }
        // A damaged snapshot is rebuilt, not an error.
        File.WriteAllBytes(path + CatalogIndex.IndexSuffix, [1, 2, 3]);
        using (CatalogIndex.LoadOrBuild(path, CatalogFile.Read(path), embedder, CatalogEmbeddingMode.ComposedAttributes, RankingFixture.Scanner(), null, out bool built))
            Assert.True(built);
    }
}
