using System.Security.Cryptography;
using System.Text;
using Engine.Protocol;
using Engine.Protocol.Messages;
using ControlKind = Engine.Control.Sessions.EventKind;
using ControlSink = Engine.Control.IEventSink;
using CustomerEvent = Engine.Control.Sessions.CustomerEvent;
using EventOutcome = Engine.Control.Sessions.EventOutcome;
using ProtocolKind = Engine.Protocol.Messages.EventKind;

namespace Engine.Cli.Hosting;

/// <summary>
/// The server's event sink backed by the control plane: maps each protocol <see cref="ShopperEvent"/>
/// to a control-plane <see cref="CustomerEvent"/> and returns only after
/// <see cref="ControlSink.RecordBatchAsync"/> completed, i.e. once the silo's event journal holds the
/// whole batch (one pipelined write to Redis for all its shoppers with <c>--redis</c>; in memory
/// otherwise), so the server's EventsAck means durable (as durable as the configured store). The
/// sessions apply the events right after and checkpoint their state periodically; a session replays
/// its journal before it answers, so a read after the ack sees the events.
/// </summary>
/// <remarks>
/// The protocol carries no event id, so the id is derived from the event's content (SHA-256 of
/// customer, kind, product, recommendation and time): a client that resends a batch after a lost
/// ack gets it acknowledged again, and the session applies each event once. If the journal cannot
/// confirm the write (Redis down) the control plane throws
/// <see cref="Engine.Control.EventJournalUnavailableException"/>, answered with a <c>NotAvailable</c> error
/// frame, and nothing is acknowledged. A batch with a malformed event (unknown
/// kind, empty customer, or one the sessions answer <c>Invalid</c>) throws
/// <see cref="EventRejectedException"/>, which the server answers with an error frame; events of the
/// same batch that were accepted stay recorded and a resend answers them <c>Duplicate</c>. Events
/// for a product the catalog does not know are not applied and not counted in the returned
/// (acknowledged) number, so EventsAck.Accepted is below the batch size; they are counted in
/// <see cref="UnknownProduct"/> instead of failing the whole batch (one unknown product must not
/// make a 10k batch retry forever).
/// </remarks>
public sealed class ControlPlaneEventSink(ControlSink control) : Engine.Server.Handlers.IEventSink
{
    private long _unknownProduct;

    /// <summary>Events not applied because their product is not in the catalog (since start).</summary>
    public long UnknownProduct => Interlocked.Read(ref _unknownProduct);

    /// <inheritdoc/>
    public async ValueTask<int> AcceptAsync(IReadOnlyList<ShopperEvent> events, CancellationToken cancellationToken)
    {
        var mapped = new CustomerEvent[events.Count];
        for (int i = 0; i < mapped.Length; i++) mapped[i] = Map(events[i], i);
        IReadOnlyList<EventOutcome> outcomes;
        try
        {
            outcomes = await control.RecordBatchAsync(mapped, cancellationToken).ConfigureAwait(false);
        }
        catch (Engine.Control.EventJournalUnavailableException ex)
        {
            // The store is down: an error frame the client retries on, never an ack.
            throw new ProtocolException(ErrorCode.NotAvailable, ex.Message, ex);
        }
        if (outcomes.Count != mapped.Length)
            throw new InvalidOperationException($"control plane answered {outcomes.Count} outcomes for {mapped.Length} events");
        int accepted = 0;
        for (int i = 0; i < outcomes.Count; i++)
        {
            switch (outcomes[i])
            {
                case EventOutcome.Accepted:
                case EventOutcome.Duplicate:
                    accepted++;
                    break;
                case EventOutcome.UnknownProduct:
                    Interlocked.Increment(ref _unknownProduct);
                    break;
                case EventOutcome.Invalid:
                    throw new EventRejectedException($"event {i}: rejected by the control plane as malformed (customer '{mapped[i].CustomerId}', kind {mapped[i].Kind})");
                default:
                    throw new EventRejectedException($"event {i}: unexpected control plane outcome {outcomes[i]}");
            }
        }
        return accepted;
    }

    /// <summary>Protocol event kind → control-plane event kind; explicit because the two enums
    /// number differently (the control plane has RemoveFromCart = 4, so Purchase is 5 there).</summary>
    public static ControlKind MapKind(byte kind) => (ProtocolKind)kind switch
    {
        ProtocolKind.View => ControlKind.View,
        ProtocolKind.Click => ControlKind.Click,
        ProtocolKind.AddToCart => ControlKind.AddToCart,
        ProtocolKind.Purchase => ControlKind.Purchase,
        ProtocolKind.Return => ControlKind.Return,
        _ => throw new EventRejectedException($"unknown event kind {kind} (expected 1..5: View, Click, AddToCart, Purchase, Return)"),
    };

    private static CustomerEvent Map(ShopperEvent e, int index)
    {
        if (string.IsNullOrEmpty(e.CustomerId)) throw new EventRejectedException($"event {index}: empty customer id");
        ControlKind kind;
        try { kind = MapKind(e.Kind); }
        catch (EventRejectedException ex) { throw new EventRejectedException($"event {index}: {ex.Message}"); }
        var at = e.TimeUnixMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(e.TimeUnixMs) : DateTimeOffset.UtcNow;
        return new CustomerEvent(IdOf(e), e.CustomerId, kind, string.IsNullOrEmpty(e.ProductId) ? null : e.ProductId, at, e.RecommendationId);
    }

    /// <summary>Content-derived event id (first 16 bytes of SHA-256 over length-prefixed fields).</summary>
    internal static Guid IdOf(ShopperEvent e)
    {
        var text = $"{e.CustomerId.Length}:{e.CustomerId}|{e.Kind}|{e.ProductId.Length}:{e.ProductId}|{e.RecommendationId?.Length ?? -1}:{e.RecommendationId}|{e.TimeUnixMs}";
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        return new Guid(hash[..16]);
    }
}

/// <summary>The control plane refused an event; the server answers the batch with an
/// <see cref="ErrorCode.InvalidArgument"/> error frame carrying this message.</summary>
public sealed class EventRejectedException(string message) : ProtocolException(ErrorCode.InvalidArgument, message);
