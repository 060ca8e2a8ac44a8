using Engine.Control.Catalog;
using Engine.Control.Content;

namespace Engine.Control.Tests;

public class CopyValidatorTests
{
    private static readonly ProductInfo Shirt = new("p1", "Oxford shirt", "apparel/shirts",
        new Dictionary<string, string> { ["material"] = "cotton", ["sizes"] = "S M L", ["collar"] = "button-down", ["weight"] = "180 g" },
        39m, 5, 0.1f, null, 1);

    private static readonly string[] Banned = ["miracle"];

    [Fact]
    public void Copy_that_states_only_the_products_facts_is_valid() =>
        Assert.Empty(CopyValidator.Validate("A button-down Oxford shirt in soft cotton, 180 g, sizes S to L.", Shirt, Banned));

    [Theory]
    [InlineData("A silk shirt.", ValidationIssueKind.UnsupportedMaterial, "silk")]
    [InlineData("Comes in XL.", ValidationIssueKind.UnsupportedSize, "XL")]
    [InlineData("Weighs only 150 g.", ValidationIssueKind.UnsupportedNumber, "150")]
    [InlineData("Fully waterproof.", ValidationIssueKind.UnsupportedFeature, "waterproof")]
    [InlineData("A Miracle of tailoring.", ValidationIssueKind.BannedTerm, "miracle")]
    public void Claims_the_product_lacks_are_flagged(string copy, ValidationIssueKind kind, string term)
    {
        var issue = Assert.Single(CopyValidator.Validate(copy, Shirt, Banned));
        Assert.Equal(kind, issue.Kind);
        Assert.Equal(term, issue.Term);
    }

    [Fact]
    public void Words_that_contain_a_term_are_not_the_term() =>
        // "goldfish" mentions no gold.
        Assert.Empty(CopyValidator.Validate("Like a goldfish, this cotton shirt is at home anywhere.", Shirt, Banned));
}
