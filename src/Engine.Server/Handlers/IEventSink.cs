using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>
/// Takes shopper events into the control plane (issue 6 implements it with grains). The server
/// acknowledges a batch only after <see cref="AcceptAsync"/> returned, so an acknowledged event
/// is never lost by the server.
/// </summary>
public interface IEventSink
{
    /// <summary>Hands over a batch; returns how many were accepted (all of them, or throw).</summary>
    ValueTask<int> AcceptAsync(IReadOnlyList<ShopperEvent> events, CancellationToken cancellationToken);
}
