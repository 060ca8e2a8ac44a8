namespace Engine.Parity.Tests.MiniLm;

/// <summary>Varied product texts: titles, descriptions, queries, units, prices, accents, punctuation, mixed case.</summary>
internal static class ProductTexts
{
    public static readonly string[] All =
    [
        "Men's trail running shoes, waterproof Gore-Tex upper, size 44",
        "Summer floral maxi dress in lightweight cotton — perfect for beach weddings",
        "Stainless steel insulated water bottle 750ml keeps drinks cold for 24 hours",
        "Wireless noise-cancelling over-ear headphones with 30h battery life",
        "Organic fair-trade coffee beans, dark roast, 1 kg bag",
        "Kids' LEGO-compatible building blocks set (500 pieces)",
        "Ergonomic office chair with lumbar support and adjustable armrests",
        "4K UHD smart TV 55\" HDR10+ Dolby Vision",
        "summer dresses under $50",
        "Crème brûlée torch kit with refillable butane — café style",
        "USB-C to HDMI adapter 4K@60Hz, aluminium housing",
        "Hand-knitted merino wool scarf, charcoal grey",
        "Yoga mat 6mm non-slip TPE eco-friendly",
        "cheap gaming laptop rtx 4060 16gb ram",
        "Vintage leather messenger bag for 15-inch laptops",
        "Bamboo cutting board set of 3 with juice groove",
        "Running shoes",
        "Premium dog food for senior dogs: chicken & brown rice recipe, 12 lb",
        "Non-stick ceramic frying pan 28 cm, induction compatible, PFOA free",
        "Smartwatch with GPS, heart-rate monitor and sleep tracking; water resistant to 50 m.",
    ];
}
