using System.Collections.Concurrent;
using Engine.Control.Catalog;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Engine.Control.Tests.Redis;

/// <summary>Issue 6's target "adding a silo under load without errors": a silo joins a Redis
/// cluster while clients keep sending events and reading profiles.</summary>
[Collection(SiloCollection.Name)]
public class SiloJoinTests(ITestOutputHelper output)
{
    private const int Workers = 6;
    private const int EventsPerCustomer = 6;     // then the worker moves to a fresh shopper (a new activation)
    private const int CallsAfterJoin = 300;      // traffic the grown cluster must carry before the test stops
    private static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(60); // a ceiling for a loaded machine, not a timing assert

    [RequiresRedisFact]
    public async Task A_silo_joining_a_two_silo_cluster_under_traffic_causes_no_failed_call_and_takes_activations()
    {
        var cluster = TestData.Id("join");
        var silos = new List<TestSilo>(await Task.WhenAll(TestSilo.StartAsync(RedisServer.Connection, cluster), TestSilo.StartAsync(RedisServer.Connection, cluster)));
        try
        {
            var product = TestData.Id("p");
            await silos[0].Grains.GetGrain<IProductGrain>(product).Upsert(TestData.Product("Boot", [1, 0, 0]));

            // Traffic enters through every live silo in turn (each `engine serve` feeds its own silo);
            // the new one is added to the rotation once it has joined.
            var entry = silos.ToArray();
            var acked = new ConcurrentDictionary<string, int>();   // customer -> acknowledged events
            var errors = new ConcurrentQueue<string>();
            var phase = 0;                                          // 0 before, 1 while joining, 2 after
            var calls = new long[3];
            using var stop = new CancellationTokenSource();

            async Task Worker(int w)
            {
                var rng = new Random(w);
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var customer = $"{cluster}-w{w}-c{i / EventsPerCustomer}";
                    var via = Volatile.Read(ref entry);
                    var e = TestData.Event(customer, i % 2 == 0 ? EventKind.View : EventKind.Click, product);
                    if (!await Call(() => via[rng.Next(via.Length)].Events.RecordAsync(e).AsTask(), o => o is EventOutcome.Accepted, $"event {e.EventId} for {customer}"))
                        continue; // not acknowledged: not counted (the test fails on the error anyway)
                    var n = acked.AddOrUpdate(customer, 1, (_, c) => c + 1);
                    // Read it back through any silo: an acknowledged event is applied and visible.
                    _ = await Call(() => via[rng.Next(via.Length)].Grains.GetGrain<ICustomerSessionGrain>(customer).GetProfile(),
                        p => p.EventsApplied == n, $"profile of {customer} after {n} events");
                }
            }

            // One attempt per call: any exception or wrong answer is an error (no retries to hide behind).
            async Task<bool> Call<T>(Func<Task<T>> call, Func<T, bool> ok, string what)
            {
                var at = Volatile.Read(ref phase);
                Interlocked.Increment(ref calls[at]);
                try
                {
                    var result = await call();
                    if (ok(result)) return true;
                    errors.Enqueue($"phase {at}: {what}: unexpected {result}");
                }
                catch (Exception ex)
                {
                    errors.Enqueue($"phase {at}: {what}: {ex.GetType().Name}: {ex.Message}");
                }
                return false;
            }

            var traffic = Enumerable.Range(0, Workers).Select(w => Task.Run(() => Worker(w))).ToArray();
            await WaitFor(() => Interlocked.Read(ref calls[0]) >= 200, "traffic before the join");

            Volatile.Write(ref phase, 1);
            var joined = await TestSilo.StartAsync(RedisServer.Connection, cluster); // returns once the silo is Active in the membership table
            silos.Add(joined);
            Volatile.Write(ref entry, silos.ToArray());
            Volatile.Write(ref phase, 2);

            var newSilo = joined.Host.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
            var management = silos[0].Grains.GetGrain<IManagementGrain>(0);
            async Task<int> SessionsOn(SiloAddress silo) =>
                (await management.GetSimpleGrainStatistics([silo])).Where(s => s.GrainType.Contains("CustomerSessionGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);
            var deadline = DateTime.UtcNow + SettleLimit;
            while (DateTime.UtcNow < deadline && !(Interlocked.Read(ref calls[2]) >= CallsAfterJoin && await SessionsOn(newSilo) > 0))
                await Task.Delay(100);
            await stop.CancelAsync();
            await Task.WhenAll(traffic);

            var perSilo = new List<int>();
            foreach (var s in silos) perSilo.Add(await SessionsOn(s.Host.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress));
            output.WriteLine($"silo join under traffic: calls before {calls[0]}, while joining {calls[1]}, after {calls[2]}; errors {errors.Count}; " +
                             $"session activations per silo [{string.Join(", ", perSilo)}] (new silo last); customers {acked.Count}");

            Assert.True(errors.IsEmpty, $"{errors.Count} failed calls, first: {string.Join(" | ", errors.Take(5))}");
            Assert.True(calls[1] > 0, "no traffic ran while the silo joined");
            Assert.True(calls[2] >= CallsAfterJoin, $"only {calls[2]} calls after the join within {SettleLimit}");
            Assert.True(perSilo[^1] > 0, "the new silo hosts no session grain");

            // Every acknowledged event is there afterwards, read through the new silo.
            foreach (var (customer, n) in acked)
                Assert.Equal(n, (await joined.Grains.GetGrain<ICustomerSessionGrain>(customer).GetProfile()).EventsApplied);
        }
        finally
        {
            await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + SettleLimit;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what}: not reached within {SettleLimit}");
            await Task.Delay(50);
        }
    }
}
