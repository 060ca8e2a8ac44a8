using Engine.Control.Sessions;
using Microsoft.Extensions.Logging;

namespace Engine.Control.Feedback;

/// <summary>Exposure pre-aggregator: one call per batch from the server's exposure logger, then one session call per
/// customer in the batch. It replaces a session call (and, before, a session state write) per served list: at
/// 2,000 Recommends/s that path allocated about 27 KB per exposure, most of it living seconds (serialized session
/// states held by the store), and the resulting gen-1/gen-2 collections cost Recommend its p99 (bench/RESULTS.md).</summary>
[StatelessWorker]
internal sealed class ExposureAggregatorGrain(FeedbackFlusher flusher, ILogger<ExposureAggregatorGrain> log) : Grain, IExposureAggregatorGrain
{
    async Task<int> IExposureAggregatorGrain.Record(IReadOnlyList<Exposure> exposures)
    {
        // customer → its exposures in served order; most batches have one exposure per customer.
        var byCustomer = new Dictionary<string, List<Exposure>>(StringComparer.Ordinal);
        foreach (var e in exposures)
        {
            if (string.IsNullOrEmpty(e.CustomerId)) continue; // no session to log to: not counted
            if (!byCustomer.TryGetValue(e.CustomerId, out var list)) byCustomer[e.CustomerId] = list = new List<Exposure>(1);
            list.Add(e);
        }
        var calls = new Task<int>[byCustomer.Count];
        var i = 0;
        foreach (var (customer, list) in byCustomer)
            calls[i++] = RecordOne(customer, list);
        var logged = 0;
        foreach (var n in await Task.WhenAll(calls)) logged += n;
        // The sessions put the batch's exposure signals in the silo's feedback buffer: on to the stats shards now, so
        // their contexts and lists are copied into the decision logs and die young (FeedbackFlusher.RequestFlush).
        if (logged > 0) flusher.RequestFlush();
        return logged;
    }

    private async Task<int> RecordOne(string customer, List<Exposure> list)
    {
        try
        {
            await GrainFactory.Session(customer).RecordExposures(list);
            return list.Count;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            log.LogDebug(ex, "exposures of customer {Customer} not logged", customer);
            return 0;
        }
    }
}
