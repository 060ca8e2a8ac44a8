namespace Engine.Control.Sessions;

/// <summary>How much each kind of event pulls the profile toward a product. Ordered by intent
/// (view &lt; click &lt; add to cart &lt; purchase); removals and returns push away.</summary>
internal static class ProfileWeights
{
    private const float View = 1f, Click = 2f, AddToCart = 4f, Purchase = 6f, Remove = -1f, Return = -4f;
    // Dwell: one view's worth per 10 s on the page, capped at 3 views.
    private const float DwellPerSecond = 0.1f, DwellCap = 3f;

    public static float For(CustomerEvent e) => e.Kind switch
    {
        EventKind.View => View,
        EventKind.Click => Click,
        EventKind.AddToCart => AddToCart,
        EventKind.RemoveFromCart => Remove,
        EventKind.Purchase => Purchase,
        EventKind.Return => Return,
        EventKind.Dwell => Math.Min(DwellCap, e.DwellMs / 1000f * DwellPerSecond),
        _ => 0f,
    };
}
