namespace Engine.Runtime.Ranking;

/// <summary>
/// The vocabulary of the demo catalog: per category, the product types, materials, styles, sizes, a median price
/// and its spread (log-normal), and a typical margin. Figures are plausible storefront values chosen for the demo,
/// not data from anywhere.
/// </summary>
internal static class DemoTaxonomy
{
    // One category of the demo store. MedianPrice: median price of a mid-tier product (log-normal centre);
    // PriceSigma: standard deviation of ln(price); Margin: typical gross margin fraction; Sentences: description
    // templates ({feature}, {occasion}); Share: fraction of the catalog in this category (shares sum to 1).
    internal sealed record Category(
        string Name, string[] Types, string[] Materials, string[] Styles, string[] Sizes,
        float MedianPrice, float PriceSigma, float Margin, string[] Sentences, float Share);

    private static readonly string[] Apparel = ["XS", "S", "M", "L", "XL", "XXL"];
    private static readonly string[] ShoeSizes = ["36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46"];
    private static readonly string[] OneSize = ["one size"];

    internal static readonly string[] Colours =
        ["black", "white", "navy", "red", "green", "beige", "grey", "blue", "pink", "brown", "olive", "burgundy", "yellow", "cream", "teal"];

    /// <summary>Made-up brand names with a price tier (multiplier on the category median).</summary>
    internal static readonly (string Name, float Tier)[] Brands =
    [
        ("Northwind", 1.0f), ("Alder & Co", 1.3f), ("Lumen", 0.8f), ("Fjordline", 1.1f), ("Kestrel", 1.5f),
        ("Marlowe", 1.7f), ("Tidewater", 0.9f), ("Copperleaf", 1.2f), ("Solstice", 0.75f), ("Vantage", 1.0f),
        ("Brightmoor", 1.4f), ("Ironbark", 1.1f), ("Basics Lab", 0.6f), ("Hollis", 2.0f), ("Pinecrest", 0.85f),
        ("Oakhaven", 1.25f), ("Sable", 1.8f), ("Everyday", 0.55f), ("Wren", 0.95f), ("Calder", 1.35f),
    ];

    /// <summary>Materials that cost more than the category's usual (price multiplier).</summary>
    internal static float MaterialFactor(string material) => material switch
    {
        "silk" or "cashmere" or "leather" or "suede" or "sterling silver" or "cast iron" or "merino wool" => 1.35f,
        "linen" or "wool" or "carbon steel" or "aluminum" or "glass" or "pearl" => 1.1f,
        "polyester" or "plastic" or "synthetic" or "tpu" or "nylon" => 0.85f,
        _ => 1f,
    };

    internal static readonly Category[] Categories =
    [
        new("dresses",
            ["maxi dress", "midi dress", "mini dress", "wrap dress", "shirt dress", "slip dress", "sundress", "cocktail dress"],
            ["cotton", "linen", "silk", "viscose", "polyester", "chiffon", "jersey"],
            ["summer", "floral", "casual", "evening", "boho", "office", "party", "vintage"], Apparel, 55, 0.45f, 0.58f,
            ["Cut for an easy fit and finished with {feature}.", "Falls just right for {occasion}.", "Lined bodice, {feature}, machine washable."], 0.09f),
        new("shirts",
            ["oxford shirt", "linen shirt", "flannel shirt", "denim shirt", "dress shirt", "polo shirt", "t-shirt", "henley"],
            ["cotton", "linen", "flannel", "denim", "poplin", "jersey", "organic cotton"],
            ["classic", "slim fit", "relaxed", "casual", "formal", "striped", "plaid"], Apparel, 35, 0.4f, 0.55f,
            ["A wardrobe staple with {feature}.", "Breathable and soft, made for {occasion}.", "Pre-washed so it keeps its shape."], 0.09f),
        new("trousers",
            ["jeans", "chinos", "tailored trousers", "cargo pants", "joggers", "shorts", "linen trousers"],
            ["denim", "cotton twill", "linen", "wool", "stretch cotton", "fleece"],
            ["slim", "straight leg", "wide leg", "relaxed", "high-rise", "tapered"], Apparel, 50, 0.4f, 0.55f,
            ["Five pockets and {feature}.", "Comfortable all day, good for {occasion}."], 0.07f),
        new("outerwear",
            ["rain jacket", "puffer jacket", "wool coat", "trench coat", "denim jacket", "fleece jacket", "parka"],
            ["nylon", "wool", "cotton", "recycled polyester", "down", "denim"],
            ["waterproof", "lightweight", "insulated", "classic", "packable", "oversized"], Apparel, 110, 0.45f, 0.52f,
            ["Keeps you warm and dry with {feature}.", "Built for {occasion}."], 0.06f),
        new("shoes",
            ["sneakers", "running shoes", "ankle boots", "loafers", "sandals", "heels", "hiking boots", "ballet flats"],
            ["leather", "suede", "canvas", "mesh", "rubber", "synthetic"],
            ["everyday", "trail", "minimal", "chunky", "classic", "summer", "waterproof"], ShoeSizes, 80, 0.45f, 0.48f,
            ["Cushioned insole and {feature}.", "Grippy outsole, made for {occasion}."], 0.1f),
        new("bags",
            ["tote bag", "backpack", "crossbody bag", "clutch", "shoulder bag", "duffel bag", "laptop bag", "wallet"],
            ["leather", "vegan leather", "canvas", "nylon", "suede", "straw"],
            ["everyday", "travel", "minimal", "structured", "slouchy", "evening"], OneSize, 70, 0.6f, 0.6f,
            ["Roomy main compartment and {feature}.", "Sized for {occasion}."], 0.08f),
        new("accessories",
            ["scarf", "belt", "sunglasses", "hat", "gloves", "beanie"],
            ["wool", "cashmere", "leather", "cotton", "acetate", "straw"],
            ["classic", "oversized", "minimal", "winter", "summer", "retro"], OneSize, 25, 0.55f, 0.62f,
            ["Finishes an outfit with {feature}.", "An easy gift for {occasion}."], 0.07f),
        new("jewelry",
            ["necklace", "earrings", "bracelet", "ring", "pendant"],
            ["sterling silver", "gold-plated", "stainless steel", "pearl", "rose gold-plated"],
            ["minimal", "statement", "vintage", "everyday", "layered"], OneSize, 40, 0.6f, 0.65f,
            ["Hypoallergenic and finished with {feature}.", "Made to wear for {occasion}."], 0.05f),
        new("kitchen",
            ["chef's knife", "frying pan", "saucepan", "cutting board", "coffee grinder", "french press", "mixing bowls", "baking sheet", "kettle"],
            ["stainless steel", "cast iron", "ceramic", "bamboo", "glass", "carbon steel"],
            ["professional", "nonstick", "compact", "induction-ready", "dishwasher-safe"], OneSize, 45, 0.7f, 0.35f,
            ["Heats evenly and comes with {feature}.", "A workhorse for {occasion}."], 0.1f),
        new("home",
            ["throw blanket", "cushion cover", "table lamp", "scented candle", "vase", "bath towel set", "bed sheets"],
            ["cotton", "linen", "wool", "ceramic", "glass", "soy wax"],
            ["cosy", "modern", "rustic", "minimal", "scandinavian"], OneSize, 35, 0.6f, 0.5f,
            ["Adds warmth to any room with {feature}.", "Just right for {occasion}."], 0.08f),
        new("electronics accessories",
            ["phone case", "usb-c charger", "wireless earbuds", "power bank", "charging cable", "laptop sleeve", "bluetooth speaker", "screen protector", "smartwatch band"],
            ["silicone", "aluminum", "tpu", "braided nylon", "leather", "plastic"],
            ["slim", "rugged", "fast-charging", "portable", "magnetic"], OneSize, 30, 0.7f, 0.42f,
            ["Tested for daily use with {feature}.", "Ready for {occasion}."], 0.09f),
        new("beauty",
            ["moisturizer", "lipstick", "face serum", "shampoo", "perfume", "sunscreen"],
            ["natural", "vegan", "fragrance-free", "organic", "mineral"],
            ["hydrating", "matte", "lightweight", "nourishing", "long-lasting"], OneSize, 25, 0.6f, 0.64f,
            ["Dermatologist tested, with {feature}.", "Part of a simple routine for {occasion}."], 0.06f),
        new("sports",
            ["yoga mat", "dumbbells", "water bottle", "resistance bands", "running shorts", "gym bag", "sports bra"],
            ["rubber", "neoprene", "stainless steel", "recycled polyester", "cork", "nylon"],
            ["non-slip", "lightweight", "insulated", "breathable", "training"], OneSize, 30, 0.6f, 0.45f,
            ["Made for hard sessions, with {feature}.", "Built for {occasion}."], 0.06f),
    ];

    internal static readonly string[] Features =
        ["soft finish", "hidden zip", "reinforced stitching", "magnetic clasp", "two-year warranty", "gift box", "recycled gift box", "adjustable strap", "lifetime guarantee"];

    internal static readonly string[] Occasions =
        ["weekends", "the office", "travel", "summer evenings", "everyday wear", "the gym", "holidays", "dinner parties", "busy mornings"];
}
