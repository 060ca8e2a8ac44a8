using Engine.Control.Sessions;

namespace Engine.Control.Feedback;

/// <summary>Intake of served lists (key 0; a [StatelessWorker]: local activations in every silo). A server logs a
/// batch of exposures, any customers, in ONE call; the grain hands each customer's exposures to that shopper's
/// session in one call (<see cref="Sessions.ICustomerSessionGrain.RecordExposures"/>), which keeps them for reward
/// attribution and passes them on to the stats shards' decision log (docs/FEEDBACK-LOG.md).</summary>
public interface IExposureAggregatorGrain : IGrainWithIntegerKey
{
    /// <summary>Logs a batch of exposures (any customers, served order); returns how many reached their sessions.
    /// An exposure with no customer id, or whose session call failed, is not counted (the caller counts those as
    /// failed); the other customers' exposures are logged regardless.</summary>
    Task<int> Record(IReadOnlyList<Exposure> exposures);
}
