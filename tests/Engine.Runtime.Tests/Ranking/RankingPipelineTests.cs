using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

public sealed class RankingPipelineTests
{
    private static CatalogProduct P(string id) => RankingFixture.Products.Single(p => p.Id == id);

    public static TheoryData<string> Paths => new() { "profile", "query", "popular", "both" };

    private static RankRequest RequestFor(string path, int k = 50) => path switch
    {
        "profile" => new RankRequest { ProfileVector = RankingFixture.Profile("black leather ankle boots"), K = k },
        "query" => new RankRequest { QueryText = "linen shirt", K = k },
        "popular" => new RankRequest { K = k },
        _ => new RankRequest { QueryText = "silk dress", ProfileVector = RankingFixture.Profile("red shoes"), K = k },
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public void Out_of_stock_products_are_never_returned_unless_allowed(string path)
    {
        var pipeline = RankingFixture.Pipeline();
        var result = pipeline.Rank(RequestFor(path, 100));
        Assert.Equal(100, result.Items.Count);
        Assert.All(result.Items, item => Assert.True(P(item.ProductId).InStock, item.ProductId));

        // Allowed: with K above the category's size, its out-of-stock products appear too, saying so.
        var all = pipeline.Rank(path is "popular" or "profile"
            ? RequestFor(path, 1000) with { Category = "jewelry", AllowOutOfStock = true }
            : RequestFor(path, 1000) with { QueryText = "jewelry", AllowOutOfStock = true });
        var jewelry = RankingFixture.Products.Where(p => p.Category == "jewelry").ToList();
        Assert.Equal(jewelry.Count, all.Items.Count);
        Assert.Contains(all.Items, item => !P(item.ProductId).InStock);
        Assert.All(all.Items.Where(i => !P(i.ProductId).InStock), i => Assert.Contains("out of stock", i.Reason));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Every_item_has_a_reason_and_scores_descend_without_duplicates(string path)
    {
        var result = RankingFixture.Pipeline().Rank(RequestFor(path));
        Assert.NotEmpty(result.Items);
        Assert.All(result.Items, i => Assert.False(string.IsNullOrWhiteSpace(i.Reason)));
        Assert.Equal(result.Items.Count, result.Items.Select(i => i.ProductId).Distinct().Count());
        for (int i = 1; i < result.Items.Count; i++) Assert.True(result.Items[i - 1].Score >= result.Items[i].Score);
    }

    [Fact]
    public void Price_and_category_from_the_query_text_are_applied_exactly()
    {
        var pipeline = RankingFixture.Pipeline();
        var result = pipeline.Rank(new RankRequest { QueryText = "summer dresses under $50", K = 1000 });
        var expected = RankingFixture.Products.Where(p => p.Category == "dresses" && p.Price < 50 && p.InStock).Select(p => p.Id).ToHashSet();
        Assert.NotEmpty(expected);
        Assert.All(result.Items, i => Assert.Contains(i.ProductId, expected));
        // Exact: every qualifying product is reachable (the filter is applied in the scan, not after a truncated top-k).
        Assert.Equal(Math.Min(expected.Count, 1000), result.Items.Count);

        var range = pipeline.Rank(new RankRequest { QueryText = "bags between $40 and $80", K = 1000 });
        Assert.NotEmpty(range.Items);
        Assert.All(range.Items, i => Assert.True(P(i.ProductId).Category == "bags" && P(i.ProductId).Price is >= 40 and <= 80, i.ProductId));
    }

    [Fact]
    public void Red_leather_bags_under_100_are_bags_under_100_led_by_red_leather()
    {
        var pipeline = RankingFixture.Pipeline();
        var request = new RankRequest { QueryText = "red leather bags under $100", K = 10 };
        var result = pipeline.Rank(request);
        Assert.Equal(10, result.Items.Count);
        Assert.All(result.Items, i => Assert.True(P(i.ProductId).Category == "bags" && P(i.ProductId).Price < 100, i.ProductId));
        Assert.Contains(result.Items.Take(3), i => P(i.ProductId).Colour == "red" && P(i.ProductId).Material.Contains("leather"));
        Assert.Contains(result.Items, i => i.Reason.Contains("matches \"red leather bags\""));
        // Similarity alone (an arm that zeroes every other weight): the best match is a red leather bag.
        var similarityOnly = new BlendWeights { Click = 0, Purchase = 0, Margin = 0, ReturnRisk = 0, BackorderRisk = 0 };
        var top = P(pipeline.Rank(request with { Blend = similarityOnly }).Items[0].ProductId);
        Assert.Contains("leather", top.Material);
        Assert.Equal("red", top.Colour);
    }

    [Fact]
    public void A_pinned_product_takes_its_slot_and_others_shift()
    {
        var pipeline = RankingFixture.Pipeline();
        var request = new RankRequest { QueryText = "linen shirt", K = 10 };
        var before = pipeline.Rank(request);
        // Pin a shirt from far down the list at slot 3, and the old #1 at slot 7.
        string outsider = pipeline.Rank(request with { K = 100 }).Items[^1].ProductId;
        var pins = new Merchandising { Pins = [new Pin(outsider, 3), new Pin(before.Items[0].ProductId, 7)] };
        var after = pipeline.Rank(request with { Merchandising = pins });
        Assert.Equal(10, after.Items.Count);
        Assert.Equal(outsider, after.Items[2].ProductId);
        Assert.Contains("pinned at #3", after.Items[2].Reason);
        Assert.Equal(before.Items[0].ProductId, after.Items[6].ProductId);
        Assert.Contains("pinned at #7", after.Items[6].Reason);
        Assert.Equal(before.Items[1].ProductId, after.Items[0].ProductId);
        Assert.Equal(before.Items[2].ProductId, after.Items[1].ProductId);
        Assert.Equal(before.Items[3].ProductId, after.Items[3].ProductId);
    }

    [Fact]
    public void A_pin_that_breaks_the_filter_or_is_out_of_stock_is_not_shown()
    {
        var pipeline = RankingFixture.Pipeline();
        string soldOut = RankingFixture.Products.First(p => !p.InStock).Id;
        string dear = RankingFixture.Products.First(p => p.InStock && p.Price > 500).Id;
        var result = pipeline.Rank(new RankRequest
        {
            QueryText = "shoes under $100", K = 10,
            Merchandising = new Merchandising { Pins = [new Pin(soldOut, 1), new Pin(dear, 2)] },
        });
        Assert.DoesNotContain(result.Items, i => i.ProductId == soldOut || i.ProductId == dear);
        Assert.Equal(10, result.Items.Count);
    }

    [Fact]
    public void A_boost_raises_a_products_rank_and_a_negative_one_buries_it()
    {
        var pipeline = RankingFixture.Pipeline();
        var request = new RankRequest { ProfileVector = RankingFixture.Profile("wool coat"), K = 20 };
        var before = pipeline.Rank(request);
        string tenth = before.Items[9].ProductId;
        var boosted = pipeline.Rank(request with { Merchandising = new Merchandising { Boosts = new Dictionary<string, float> { [tenth] = 2f } } });
        int rank = boosted.Items.Select(i => i.ProductId).ToList().IndexOf(tenth);
        Assert.InRange(rank, 0, 8);
        Assert.Contains("promoted", boosted.Items[rank].Reason);

        string first = before.Items[0].ProductId;
        var buried = pipeline.Rank(request with { Merchandising = new Merchandising { Boosts = new Dictionary<string, float> { [first] = -5f } } });
        Assert.NotEqual(first, buried.Items[0].ProductId);
    }

    [Fact]
    public void Blend_weights_from_the_request_override_the_service_default()
    {
        var pipeline = RankingFixture.Pipeline();
        var request = new RankRequest { QueryText = "bags", K = 20 };
        var plain = pipeline.Rank(request);
        var marginHeavy = pipeline.Rank(request with { Blend = new BlendWeights { Margin = 20f } });
        var safeShipping = pipeline.Rank(request with { Blend = new BlendWeights { BackorderRisk = 50f } });
        float MeanMargin(RankResult r) => r.Items.Average(i => P(i.ProductId).Margin);
        float MeanRisk(RankResult r) => r.Items.Average(i => P(i.ProductId).BackorderRisk);
        Assert.True(MeanMargin(marginHeavy) > MeanMargin(plain) + 0.02f, $"{MeanMargin(marginHeavy)} vs {MeanMargin(plain)}");
        Assert.True(MeanRisk(safeShipping) <= MeanRisk(plain), $"{MeanRisk(safeShipping)} vs {MeanRisk(plain)}");
        Assert.All(safeShipping.Items, i => Assert.True(P(i.ProductId).BackorderRisk < 0.3f));
    }

    [Fact]
    public void RankBatch_answers_each_request_as_Rank_does()
    {
        var pipeline = RankingFixture.Pipeline();
        var requests = new[] { RequestFor("profile", 15), RequestFor("query", 5), RequestFor("popular", 7), RequestFor("both", 30),
                               new RankRequest { QueryText = "kettle under $30", K = 12 } };
        var batch = pipeline.RankBatch(requests);
        Assert.Equal(requests.Length, batch.Length);
        for (int i = 0; i < requests.Length; i++)
        {
            var single = pipeline.Rank(requests[i]);
            Assert.Equal(single.Items, batch[i].Items);
            Assert.Equal(requests[i].K, batch[i].Items.Count);
        }
    }

    [Fact]
    public void Page_category_restricts_and_an_unknown_one_returns_nothing()
    {
        var pipeline = RankingFixture.Pipeline();
        var shoes = pipeline.Rank(new RankRequest { ProfileVector = RankingFixture.Profile("red"), Category = "shoes", K = 30 });
        Assert.All(shoes.Items, i => Assert.Equal("shoes", P(i.ProductId).Category));
        Assert.Empty(pipeline.Rank(new RankRequest { Category = "spaceships", K = 5 }).Items);
        // Query words and page category that contradict each other: nothing, not the wrong category.
        Assert.Empty(pipeline.Rank(new RankRequest { QueryText = "bags", Category = "kitchen", K = 5 }).Items);
    }

    [Fact]
    public void Model_version_names_heads_encoder_catalog_and_index()
    {
        var result = RankingFixture.Pipeline().Rank(new RankRequest { K = 3 });
        Assert.StartsWith("heads-default-1+hashing-bow-1/128+catalog-test+index-", result.ModelVersion);
    }

    [Fact]
    public void Bad_requests_are_rejected_with_a_reason()
    {
        var pipeline = RankingFixture.Pipeline();
        Assert.Contains("k = 0", Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { K = 0 })).Message);
        Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { K = RankingPipeline.MaxK + 1 }));
        Assert.Contains("dimensions", Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { ProfileVector = new float[3] })).Message);
        var nan = new float[RankingFixture.Dims];
        nan[5] = float.NaN;
        Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { ProfileVector = nan }));
        Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { QueryText = new string('a', 5000) }));
        Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { Blend = new BlendWeights { Click = float.NaN } }));
        var batch = Assert.Throws<ArgumentException>(() => pipeline.RankBatch([new RankRequest(), new RankRequest { K = -1 }]));
        Assert.Contains("request 1", batch.Message);
        Assert.False(pipeline.TryValidate(new RankRequest { K = 0 }, out var why));
        Assert.NotNull(why);
        Assert.True(pipeline.TryValidate(new RankRequest(), out _));
    }

    [Fact]
    public void A_text_query_without_an_encoder_is_refused_but_profiles_work()
    {
        var products = RankingFixture.Products;
        var embedder = new HashingTextEmbedder(RankingFixture.Dims);
        float[] vectors = CatalogEmbedder.Embed(products, embedder, CatalogEmbeddingMode.ComposedAttributes);
        using var index = CatalogIndex.Build(products, vectors, RankingFixture.Dims, new CategoryVocabulary(products), RankingFixture.Scanner());
        var pipeline = new RankingPipeline(products, index, embedder: null);
        Assert.Contains("no text encoder", Assert.Throws<ArgumentException>(() => pipeline.Rank(new RankRequest { QueryText = "bags" })).Message);
        Assert.Equal(5, pipeline.Rank(new RankRequest { ProfileVector = RankingFixture.Profile("bags"), K = 5 }).Items.Count);
        Assert.Contains("no-encoder", pipeline.ModelVersion);
    }
}
