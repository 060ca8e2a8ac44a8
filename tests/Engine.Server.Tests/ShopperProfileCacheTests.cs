using Engine.Cli.Hosting;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server.Tests;

/// <summary>
/// The server-side profile cache of <c>engine serve</c> (<see cref="ShopperProfileCache"/>): hits skip the session
/// read, the staleness bound holds on a manual clock, events through the server invalidate before they are
/// acknowledged, and a read racing an invalidation is not kept.
/// </summary>
public sealed class ShopperProfileCacheTests
{
    private static readonly ShopperProfileCacheOptions Options = new()
    {
        Slots = 64,
        MaxAge = TimeSpan.FromSeconds(30),
        RefreshAfter = TimeSpan.FromSeconds(15),
        RefreshSpread = 0, // the timing tests below count on one refresh age; the spread has its own test
    };

    [Fact]
    public async Task A_hit_is_answered_synchronously_without_a_read_and_the_same_vector_comes_back()
    {
        var source = new CountingProfiles();
        source.Set("alice", [1, 2, 3]);
        var cache = new ShopperProfileCache(source, Options, new ManualClock());

        float[]? first = await cache.GetAsync("alice", CancellationToken.None);
        ValueTask<float[]?> second = cache.GetAsync("alice", CancellationToken.None);

        Assert.True(second.IsCompletedSuccessfully);
        Assert.Same(first, await second);
        Assert.Equal(1, source.Reads("alice"));
        Assert.Equal((1, 1), (cache.Hits, cache.Misses));
    }

    [Fact]
    public async Task A_profile_is_never_served_older_than_the_max_age()
    {
        var clock = new ManualClock();
        var source = new CountingProfiles();
        source.Set("alice", [1, 0, 0]);
        var cache = new ShopperProfileCache(source, Options with { RefreshAfter = Options.MaxAge }, clock);
        await cache.GetAsync("alice", CancellationToken.None);

        // The session changes without this server seeing it (an event sent to another server).
        source.Set("alice", [0, 1, 0]);
        clock.Advance(TimeSpan.FromSeconds(30));
        Is(await cache.GetAsync("alice", CancellationToken.None), 1, 0, 0); // exactly at the bound: still served
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Is(await cache.GetAsync("alice", CancellationToken.None), 0, 1, 0); // past it: read again
        Assert.Equal(2, source.Reads("alice"));
    }

    [Fact]
    public async Task Past_the_refresh_age_a_hit_serves_the_cached_profile_and_rereads_once_in_the_background()
    {
        var clock = new ManualClock();
        var source = new CountingProfiles();
        source.Set("alice", [1, 0, 0]);
        var cache = new ShopperProfileCache(source, Options, clock);
        await cache.GetAsync("alice", CancellationToken.None);
        source.Set("alice", [0, 1, 0]);
        source.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        clock.Advance(TimeSpan.FromSeconds(16));
        Is(await cache.GetAsync("alice", CancellationToken.None), 1, 0, 0);
        Is(await cache.GetAsync("alice", CancellationToken.None), 1, 0, 0); // one re-read in flight, not two
        Assert.Equal(2, source.Reads("alice"));
        source.Gate.SetResult();

        await WaitForProfileAsync(cache, "alice", [0f, 1, 0], "the background re-read never replaced the entry");
        Assert.Equal(1, cache.Misses); // no read on the request path after the first
    }

    /// <summary>A re-read that finds the same profile renews the cached entry (same array, age counted from the re-read):
    /// no new entry per re-read to be promoted into gen 2; a changed profile replaces it.</summary>
    [Fact]
    public async Task A_reread_of_an_unchanged_profile_renews_the_cached_one_and_a_changed_one_replaces_it()
    {
        var clock = new ManualClock();
        var source = new CountingProfiles();
        source.Set("alice", [1, 0, 0]);
        var cache = new ShopperProfileCache(source, Options, clock);
        float[]? first = await cache.GetAsync("alice", CancellationToken.None);

        source.Set("alice", [1, 0, 0]); // equal values, another array
        clock.Advance(TimeSpan.FromSeconds(16));
        await cache.GetAsync("alice", CancellationToken.None); // past the refresh age: re-read in the background
        await WaitForReadsAsync(source, "alice", 2);
        clock.Advance(TimeSpan.FromSeconds(20)); // 36 s after the first read, 20 s after the re-read: within the max age of the re-read
        source.Set("alice", [0, 1, 0]);
        ValueTask<float[]?> renewed = cache.GetAsync("alice", CancellationToken.None);
        Assert.True(renewed.IsCompletedSuccessfully);
        Assert.Same(first, await renewed); // a hit, not expired: the first read's array, renewed
        Assert.Equal(1, cache.Misses);

        await WaitForReadsAsync(source, "alice", 3); // that hit was past the refresh age again: a second re-read finds the change
        await WaitForProfileAsync(cache, "alice", [0f, 1, 0], "the changed profile never replaced the entry");
    }

    /// <summary>Polls until <paramref name="customer"/>'s cached profile equals <paramref name="expected"/> (a background
    /// re-read replaced it), failing with <paramref name="never"/> after 20 s.</summary>
    private static async Task WaitForProfileAsync(ShopperProfileCache cache, string customer, float[] expected, string never)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!(await cache.GetAsync(customer, CancellationToken.None))!.SequenceEqual(expected))
        {
            Assert.True(DateTime.UtcNow < deadline, never);
            await Task.Delay(5);
        }
    }

    private static async Task WaitForReadsAsync(CountingProfiles source, string customer, int reads)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (source.Reads(customer) < reads)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{customer} was read {source.Reads(customer)} times, {reads} expected");
            await Task.Delay(5);
        }
        await Task.Delay(20); // the read's result is stored just after it returns
    }

    /// <summary>Shoppers read together re-read spread over [RefreshAfter × (1 − spread), RefreshAfter], each at an age of its
    /// own, not all at RefreshAfter (a burst of session reads: bench/RESULTS.md, eighth session).</summary>
    [Fact]
    public async Task Shoppers_read_together_are_reread_spread_over_the_refresh_window()
    {
        const int shoppers = 2000;
        var clock = new ManualClock();
        var source = new CountingProfiles();
        string[] ids = [.. Enumerable.Range(0, shoppers).Select(_ => "c" + Guid.NewGuid().ToString("N"))];
        foreach (var id in ids) source.Set(id, [1, 0, 0]);
        var cache = new ShopperProfileCache(source, Options with { Slots = 1 << 20, MaxAge = TimeSpan.FromSeconds(60), RefreshAfter = TimeSpan.FromSeconds(40), RefreshSpread = 0.5 }, clock);
        foreach (var id in ids) await cache.GetAsync(id, CancellationToken.None);

        // Each step hits every shopper once; count the background re-reads each step started.
        double[] ages = [19.9, 25, 30, 35, 40.1];
        int[] rereads = new int[ages.Length];
        for (int step = 0; step < ages.Length; step++)
        {
            clock.Advance(TimeSpan.FromSeconds(ages[step] - (step == 0 ? 0 : ages[step - 1])));
            foreach (var id in ids) await cache.GetAsync(id, CancellationToken.None);
            rereads[step] = ids.Sum(source.Reads) - shoppers; // a re-read renews its entry: none is re-read twice by 40.1 s
        }

        Assert.Equal(0, rereads[0]);                       // none before RefreshAfter × (1 − spread) = 20 s
        Assert.Equal(shoppers, rereads[4]);                // every one by RefreshAfter, each once
        for (int i = 1; i < 4; i++)                        // uniform in between: a quarter of them per 5 s (± a wide margin)
            Assert.InRange(rereads[i], i * shoppers / 4 - shoppers / 10, i * shoppers / 4 + shoppers / 10);
        Assert.Equal(shoppers, cache.Misses);              // all of them hits after the first read
    }

    [Fact]
    public async Task An_event_through_the_server_invalidates_the_shopper_before_it_is_acknowledged()
    {
        var source = new CountingProfiles();
        source.Set("alice", [1, 0, 0]);
        source.Set("bob", [0, 0, 1]);
        var cache = new ShopperProfileCache(source, Options, new ManualClock());
        await cache.GetAsync("alice", CancellationToken.None);
        await cache.GetAsync("bob", CancellationToken.None);
        // The control plane applies the event (the profile moves) before it acknowledges.
        var sink = new ProfileInvalidatingEventSink(new ApplyingSink(() => source.Set("alice", [0, 1, 0])), cache);

        int accepted = await sink.AcceptAsync([new ShopperEvent { CustomerId = "alice", Kind = (byte)EventKind.Click, ProductId = "p1" }], CancellationToken.None);

        Assert.Equal(1, accepted);
        Is(await cache.GetAsync("alice", CancellationToken.None), 0, 1, 0); // read-your-writes
        Is(await cache.GetAsync("bob", CancellationToken.None), 0, 0, 1);   // others keep their entry
        Assert.Equal(2, source.Reads("alice"));
        Assert.Equal(1, source.Reads("bob"));
    }

    [Fact]
    public async Task A_read_in_flight_across_an_invalidation_is_returned_but_not_kept()
    {
        var source = new CountingProfiles();
        source.Set("alice", [1, 0, 0]);
        var cache = new ShopperProfileCache(source, Options, new ManualClock());
        source.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        ValueTask<float[]?> racing = cache.GetAsync("alice", CancellationToken.None); // reads the old session...
        cache.Invalidate("alice");                                                    // ...while an event is applied
        source.Set("alice", [0, 1, 0]);
        source.Gate.SetResult();
        Is(await racing, 1, 0, 0);

        source.Gate = null;
        Is(await cache.GetAsync("alice", CancellationToken.None), 0, 1, 0);
    }

    [Fact]
    public async Task More_shoppers_than_slots_stay_bounded_and_each_gets_only_their_own_profile()
    {
        var source = new CountingProfiles();
        for (int i = 0; i < 1000; i++) source.Set($"c{i}", [i, 1, 0]);
        source.Set("cold", null);
        var cache = new ShopperProfileCache(source, Options, new ManualClock());

        for (int round = 0; round < 3; round++)
            for (int i = 0; i < 1000; i += 7)
                Is(await cache.GetAsync($"c{i}", CancellationToken.None), i, 1, 0);
        Assert.Null(await cache.GetAsync("cold", CancellationToken.None));
        Assert.Null(await cache.GetAsync("cold", CancellationToken.None)); // "no profile yet" is cached too
        Assert.Equal(1, source.Reads("cold"));
        Assert.True(cache.Hits > 0 && cache.Misses >= 1000 / 7, $"hits {cache.Hits}, misses {cache.Misses}");
    }

    [Fact]
    public void Options_out_of_range_are_refused_with_the_option_named()
    {
        var source = new CountingProfiles();
        Assert.Contains("power of two", Assert.Throws<ArgumentException>(() => new ShopperProfileCache(source, Options with { Slots = 48 })).Message);
        Assert.Contains("max age", Assert.Throws<ArgumentException>(() => new ShopperProfileCache(source, Options with { MaxAge = TimeSpan.Zero })).Message);
        Assert.Contains("refresh age", Assert.Throws<ArgumentException>(() => new ShopperProfileCache(source, Options with { RefreshAfter = TimeSpan.FromMinutes(1) })).Message);
        Assert.Contains("refresh spread", Assert.Throws<ArgumentException>(() => new ShopperProfileCache(source, Options with { RefreshSpread = 1 })).Message);
        Assert.Contains("refresh spread", Assert.Throws<ArgumentException>(() => new ShopperProfileCache(source, Options with { RefreshSpread = double.NaN })).Message);
    }

    private static void Is(float[]? actual, params float[] expected)
    {
        Assert.NotNull(actual);
        Assert.True(actual.AsSpan().SequenceEqual(expected), $"got [{string.Join(", ", actual)}], expected [{string.Join(", ", expected)}]");
    }

    /// <summary>A clock that moves only when told (1 tick = 1 µs).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1_000_000;
        public override long TimestampFrequency => 1_000_000;
        public override long GetTimestamp() => Interlocked.Read(ref _ticks);
        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, (long)by.TotalMicroseconds);
    }

    /// <summary>Session profiles by customer, counting reads; reads wait for <see cref="Gate"/> when one is set.</summary>
    private sealed class CountingProfiles : IShopperProfiles
    {
        private readonly Dictionary<string, float[]?> _profiles = [];
        private readonly Dictionary<string, int> _reads = [];
        public TaskCompletionSource? Gate { get; set; }

        public void Set(string customer, float[]? profile)
        {
            lock (_profiles) _profiles[customer] = profile;
        }

        public int Reads(string customer)
        {
            lock (_profiles) return _reads.GetValueOrDefault(customer);
        }

        public async ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken)
        {
            float[]? profile;
            lock (_profiles)
            {
                _reads[customerId] = _reads.GetValueOrDefault(customerId) + 1;
                profile = _profiles.GetValueOrDefault(customerId);
            }
            if (Gate is { } gate) await gate.Task;
            return profile;
        }
    }

    private sealed class ApplyingSink(Action apply) : IEventSink
    {
        public ValueTask<int> AcceptAsync(IReadOnlyList<ShopperEvent> events, CancellationToken cancellationToken)
        {
            apply();
            return ValueTask.FromResult(events.Count);
        }
    }
}
