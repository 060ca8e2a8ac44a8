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
    // Reused across calls: a stateless worker activation runs one call at a time (not reentrant), and every list handed
    // to a session call is awaited before the call returns. Per batch this leaves the session calls themselves: no
    // dictionary, list, task array or per-customer async state machine (about 0.3 KB per Recommend before).
    private readonly Dictionary<string, List<Exposure>> _byCustomer = new(StringComparer.Ordinal);
    private readonly List<(string Customer, List<Exposure> List, Task Call)> _calls = [];
    private readonly Stack<List<Exposure>> _spareLists = new();
    private const int MaxSpareLists = 512;

    async Task<int> IExposureAggregatorGrain.Record(IReadOnlyList<Exposure> exposures)
    {
        var logged = 0;
        try
        {
            // customer → its exposures in served order; most batches have one exposure per customer.
            for (var i = 0; i < exposures.Count; i++)
            {
                var e = exposures[i];
                if (string.IsNullOrEmpty(e.CustomerId)) continue; // no session to log to: not counted
                if (!_byCustomer.TryGetValue(e.CustomerId, out var list))
                    _byCustomer[e.CustomerId] = list = _spareLists.TryPop(out var spare) ? spare : new List<Exposure>(1);
                list.Add(e);
            }
            foreach (var (customer, list) in _byCustomer)
            {
                Task call;
                try { call = GrainFactory.Session(customer).RecordExposures(list); }
                catch (Exception ex) when (ex is not OutOfMemoryException) { call = Task.FromException(ex); }
                _calls.Add((customer, list, call));
            }
            foreach (var (customer, list, call) in _calls)
            {
                try
                {
                    await call;
                    logged += list.Count;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    log.LogDebug(ex, "exposures of customer {Customer} not logged", customer);
                }
            }
        }
        finally
        {
            foreach (var list in _byCustomer.Values)
            {
                list.Clear();
                if (_spareLists.Count < MaxSpareLists) _spareLists.Push(list);
            }
            _byCustomer.Clear();
            _calls.Clear();
        }
        // The sessions put the batch's exposure signals in the silo's feedback buffer: on to the stats shards now, so
        // their contexts and lists are copied into the decision logs and die young (FeedbackFlusher.RequestFlush).
        if (logged > 0) flusher.RequestFlush();
        return logged;
    }
}
