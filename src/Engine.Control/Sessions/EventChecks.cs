namespace Engine.Control.Sessions;

/// <summary>What makes an event malformed whatever the session's state: the one definition the sink
/// (before journaling) and the session (before applying) share.</summary>
internal static class EventChecks
{
    /// <summary>Whether <paramref name="e"/> can be applied to a session at all (customer named, kind
    /// known, positive quantity, non-negative dwell, a product where the kind needs one).</summary>
    public static bool IsWellFormed(CustomerEvent e) =>
        !string.IsNullOrEmpty(e.CustomerId) && e.Quantity > 0 && e.DwellMs >= 0 && Enum.IsDefined(e.Kind)
        && !(e.NeedsProduct && string.IsNullOrEmpty(e.ProductId));
}
