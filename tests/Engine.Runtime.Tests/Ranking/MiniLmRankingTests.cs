using Engine.Cpu;
using Engine.Cpu.Vectors;
using Engine.Runtime.Encoding;
using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

/// <summary>
/// The pipeline with the real encoder (all-MiniLM-L6-v2 in Q8_0 on the CPU backend) over a 400-product demo catalog
/// embedded product by product: the semantic half of search, which the lexical stand-in cannot show.
/// </summary>
public sealed class MiniLmRankingTests : IClassFixture<MiniLmRankingTests.Fixture>
{
    public sealed class Fixture : IDisposable
    {
        private readonly CpuBackend _backend = new(new CpuBackendOptions { Threads = 2 });
        private readonly CpuVectorScanner _scanner = new(1);
        public readonly MiniLmEncoder Encoder;
        public readonly RankingPipeline Pipeline;
        public readonly IReadOnlyList<CatalogProduct> Products = DemoCatalog.Generate(400, 21);

        public Fixture()
        {
            Encoder = MiniLmEncoder.CreateDefault(_backend);
            Pipeline = RankingPipeline.FromCatalog(Products, Encoder, _scanner, CatalogEmbeddingMode.FullText, "minilm-test");
        }

        public void Dispose()
        {
            Pipeline.Dispose();
            Encoder.Dispose();
            _scanner.Dispose();
            _backend.Dispose();
        }
    }

    private readonly Fixture _f;

    public MiniLmRankingTests(Fixture fixture) => _f = fixture;

    private CatalogProduct P(string id) => _f.Products.Single(p => p.Id == id);

    [Fact]
    public void Red_leather_bags_under_100_are_bags_under_100_and_mostly_leather()
    {
        var result = _f.Pipeline.Rank(new RankRequest { QueryText = "red leather bags under $100", K = 10 });
        Assert.Equal(10, result.Items.Count);
        Assert.All(result.Items, i => Assert.True(P(i.ProductId).Category == "bags" && P(i.ProductId).Price < 100, i.ProductId));
        Assert.True(result.Items.Take(5).Count(i => P(i.ProductId).Material.Contains("leather")) >= 3,
            string.Join(", ", result.Items.Take(5).Select(i => P(i.ProductId).Title)));
        // By meaning alone (an arm that zeroes the business terms), the three closest are all leather.
        var similarityOnly = new BlendWeights { Click = 0, Purchase = 0, Margin = 0, ReturnRisk = 0, BackorderRisk = 0 };
        var closest = _f.Pipeline.Rank(new RankRequest { QueryText = "red leather bags under $100", K = 3, Blend = similarityOnly });
        Assert.All(closest.Items, i => Assert.Contains("leather", P(i.ProductId).Material));
        Assert.StartsWith($"heads-default-1+{_f.Encoder.ModelVersion}+catalog-minilm-test+index-", result.ModelVersion);
        Assert.Contains("MiniLM", result.ModelVersion);
    }

    [Theory]
    [InlineData("something to fry eggs in", "kitchen")]
    [InlineData("warm coat for winter", "outerwear")]
    [InlineData("comfortable footwear for walking all day", "shoes")]
    [InlineData("gold jewellery for a wedding", "jewelry")]
    public void A_query_without_category_words_finds_its_category_by_meaning(string query, string category)
    {
        var result = _f.Pipeline.Rank(new RankRequest { QueryText = query, K = 5, Blend = new BlendWeights { Click = 0, Purchase = 0, Margin = 0, ReturnRisk = 0, BackorderRisk = 0 } });
        Assert.True(result.Items.Take(3).Count(i => P(i.ProductId).Category == category) >= 2,
            string.Join(", ", result.Items.Select(i => $"{P(i.ProductId).Title} ({P(i.ProductId).Category})")));
    }
}
