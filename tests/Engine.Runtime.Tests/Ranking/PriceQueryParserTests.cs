using Engine.Runtime.Ranking;

namespace Engine.Runtime.Tests.Ranking;

public sealed class PriceQueryParserTests
{
    private const float Inf = float.PositiveInfinity;
    private static float Below(float x) => MathF.BitDecrement(x);
    private static float Above(float x) => MathF.BitIncrement(x);

    [Theory]
    // below, exclusive
    [InlineData("summer dresses under $50", "summer dresses", 0f, 50f, true)]
    [InlineData("dresses below 50", "dresses", 0f, 50f, true)]
    [InlineData("Shoes UNDER 80 dollars", "Shoes", 0f, 80f, true)]
    [InlineData("bags less than $49.99", "bags", 0f, 49.99f, true)]
    [InlineData("cheaper than 30 usd kettle", "kettle", 0f, 30f, true)]
    [InlineData("scarf < 20", "scarf", 0f, 20f, true)]
    [InlineData("coats under $1,200", "coats", 0f, 1200f, true)]
    [InlineData("watch under 1.5k", "watch", 0f, 1500f, true)]
    [InlineData("red bag under €60", "red bag", 0f, 60f, true)]
    // below, inclusive
    [InlineData("jeans up to $60", "jeans", 0f, 60f, false)]
    [InlineData("earbuds at most 40", "earbuds", 0f, 40f, false)]
    [InlineData("no more than $25 candles", "candles", 0f, 25f, false)]
    [InlineData("lamp max $70", "lamp", 0f, 70f, false)]
    [InlineData("sandals $40 or less", "sandals", 0f, 40f, false)]
    [InlineData("rings 30 dollars and under", "rings", 0f, 30f, false)]
    [InlineData("gift within $35", "gift", 0f, 35f, false)]
    [InlineData("mat <= 25", "mat", 0f, 25f, false)]
    public void Upper_bounds(string text, string rest, float min, float max, bool exclusive)
    {
        var q = PriceQueryParser.Parse(text);
        Assert.Equal(rest, q.Text);
        Assert.Equal(min, q.MinPrice);
        Assert.Equal(exclusive ? Below(max) : max, q.MaxPrice);
        Assert.True(q.HasPriceFilter);
    }

    [Theory]
    [InlineData("coats over $100", "coats", 100f, true)]
    [InlineData("above 100 boots", "boots", 100f, true)]
    [InlineData("perfume more than 50", "perfume", 50f, true)]
    [InlineData("bags > 200", "bags", 200f, true)]
    [InlineData("at least $80 speakers", "speakers", 80f, false)]
    [InlineData("knives from $45", "knives", 45f, false)]
    [InlineData("wool coat $150 and up", "wool coat", 150f, false)]
    [InlineData("wool coat $150+", "wool coat", 150f, false)]
    [InlineData("heels 90 dollars or more", "heels", 90f, false)]
    [InlineData("starting at $30 towels", "towels", 30f, false)]
    public void Lower_bounds(string text, string rest, float min, bool exclusive)
    {
        var q = PriceQueryParser.Parse(text);
        Assert.Equal(rest, q.Text);
        Assert.Equal(exclusive ? Above(min) : min, q.MinPrice);
        Assert.Equal(Inf, q.MaxPrice);
    }

    [Theory]
    [InlineData("dresses $20-$40", "dresses", 20f, 40f)]
    [InlineData("dresses $20 - 40", "dresses", 20f, 40f)]
    [InlineData("dresses 20-40 dollars", "dresses", 20f, 40f)]
    [InlineData("dresses $20 to $40", "dresses", 20f, 40f)]
    [InlineData("dresses between 20 and 40", "dresses", 20f, 40f)]
    [InlineData("dresses between $20 and $40", "dresses", 20f, 40f)]
    [InlineData("dresses from $20 to $40", "dresses", 20f, 40f)]
    [InlineData("dresses $20–$40", "dresses", 20f, 40f)]
    [InlineData("sneakers over $20 under $50", "sneakers", 20f, 50f)]
    [InlineData("around $50 backpack", "backpack", 40f, 60f)]
    public void Ranges(string text, string rest, float min, float max)
    {
        var q = PriceQueryParser.Parse(text);
        Assert.Equal(rest, q.Text);
        bool overUnder = text.Contains("over");
        Assert.Equal(overUnder ? Above(min) : min, q.MinPrice, 4);
        Assert.Equal(overUnder ? Below(max) : max, q.MaxPrice, 4);
    }

    [Theory]
    [InlineData("size 10 boots")]
    [InlineData("iphone 15 case")]
    [InlineData("2 pack socks 20-40")]
    [InlineData("maxi dress")]
    [InlineData("minimal ring")]
    [InlineData("")]
    [InlineData("   ")]
    public void Numbers_without_price_context_are_not_prices(string text)
    {
        var q = PriceQueryParser.Parse(text);
        Assert.False(q.HasPriceFilter);
        Assert.Equal(0f, q.MinPrice);
        Assert.Equal(Inf, q.MaxPrice);
        Assert.Equal(text.Trim(), q.Text);
    }

    [Fact]
    public void A_range_ending_below_its_start_is_empty()
    {
        var q = PriceQueryParser.Parse("bags between 50 and 20");
        Assert.True(q.MinPrice > q.MaxPrice);
    }

    [Fact]
    public void Only_a_price_leaves_no_text()
    {
        Assert.Equal("", PriceQueryParser.Parse("under $50").Text);
    }
}

public sealed class CategoryVocabularyTests
{
    private static readonly CategoryVocabulary Vocabulary = new(DemoCatalog.Generate(3000, 11));

    [Theory]
    [InlineData("red leather bags under $100", "bags")]
    [InlineData("summer dresses", "dresses")]
    [InlineData("white sneakers", "shoes")]
    [InlineData("running shoes", "shoes")]
    [InlineData("running shorts", "sports")]
    [InlineData("phone case", "electronics accessories")]
    [InlineData("electronics", "electronics accessories")]
    [InlineData("cast iron frying pans", "kitchen")]
    [InlineData("Kitchen", "kitchen")]
    public void Words_name_their_category(string text, string category)
    {
        var ids = Vocabulary.Match(text);
        Assert.Equal([Vocabulary.IdOf(category)], ids);
    }

    [Fact]
    public void Text_without_category_words_names_none()
    {
        Assert.Empty(Vocabulary.Match("something nice for my mother"));
        Assert.Equal(-1, Vocabulary.IdOf("spaceships"));
    }
}
