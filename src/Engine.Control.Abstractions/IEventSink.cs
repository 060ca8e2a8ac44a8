using Engine.Control.Sessions;

namespace Engine.Control;

/// <summary>The entry point the server calls for incoming events and exposures. An event counts
/// as received only when the returned task completes: by then it is durable in the store.</summary>
public interface IEventSink
{
    /// <summary>Records one event; completes once durable.</summary>
    ValueTask<EventOutcome> RecordAsync(CustomerEvent e, CancellationToken cancellationToken = default);

    /// <summary>Records many events (any customers); outcomes in input order.</summary>
    ValueTask<IReadOnlyList<EventOutcome>> RecordBatchAsync(IReadOnlyList<CustomerEvent> events, CancellationToken cancellationToken = default);

    /// <summary>Logs a recommendation served (or computed in shadow).</summary>
    ValueTask RecordExposureAsync(Exposure exposure, CancellationToken cancellationToken = default);
}
