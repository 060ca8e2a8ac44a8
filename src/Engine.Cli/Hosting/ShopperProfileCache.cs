using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Cli.Hosting;

/// <summary>Limits of a <see cref="ShopperProfileCache"/>.</summary>
public sealed record ShopperProfileCacheOptions
{
    /// <summary>
    /// Cached shoppers at most (a power of two ≥ 2; two-way set associative, so two shoppers whose ids
    /// hash alike both stay). Memory is bounded by Slots × dims × 4 B: 32768 × 384 × 4 ≈ 50 MB.
    /// </summary>
    public int Slots { get; init; } = 32_768;

    /// <summary>
    /// The staleness bound: a profile is served at most this long after the read that fetched it began.
    /// Events that pass through this server drop the shopper's entry at once (see
    /// <see cref="ShopperProfileCache.Invalidate"/>), so this bounds only changes this server did not see
    /// (events sent to another server of a cluster).
    /// </summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Age from which a hit also starts one background re-read (the cached profile is still served), so a
    /// shopper who keeps browsing is rarely left with a miss on the request path when <see cref="MaxAge"/> passes.
    /// Each cached shopper costs at most one session read per this interval less <see cref="RefreshSpread"/> of it (10k
    /// browsing shoppers: ~300 reads/s at the defaults, the shopper's own age between 22.5 and 45 s).
    /// </summary>
    public TimeSpan RefreshAfter { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// Fraction of <see cref="RefreshAfter"/> by which a shopper's refresh age is brought forward, fixed per shopper
    /// (from the id's hash): ages spread over [RefreshAfter × (1 − spread), RefreshAfter]. Shoppers first read together
    /// (a server start, a catalog-wide campaign) would otherwise re-read together every RefreshAfter, a burst of session
    /// reads whose gen-0 collections took 10–30 ms instead of ~5 (bench/RESULTS.md, eighth session); spread, the same
    /// reads come at an even rate. 0: every shopper at RefreshAfter.
    /// </summary>
    public double RefreshSpread { get; init; } = 0.5;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (Slots < 2 || (Slots & (Slots - 1)) != 0) throw new ArgumentException($"profile cache slots must be a power of two ≥ 2, found {Slots}");
        if (MaxAge <= TimeSpan.Zero) throw new ArgumentException($"profile cache max age must be > 0, found {MaxAge}");
        if (RefreshAfter <= TimeSpan.Zero || RefreshAfter > MaxAge) throw new ArgumentException($"profile cache refresh age must be in (0, max age], found {RefreshAfter}");
        if (!(RefreshSpread >= 0 && RefreshSpread < 1)) throw new ArgumentException($"profile cache refresh spread must be in [0, 1), found {RefreshSpread}");
    }
}

/// <summary>
/// Keeps shoppers' profile vectors in the server so that a Recommend does not call the session grain:
/// a hit is answered synchronously with no allocation. Bounded (<see cref="ShopperProfileCacheOptions.Slots"/>),
/// stale by at most <see cref="ShopperProfileCacheOptions.MaxAge"/> for changes this server did not see, and
/// read-your-writes for events that pass through this server: <see cref="ProfileInvalidatingEventSink"/> calls
/// <see cref="Invalidate"/> once the control plane acknowledged an event, before the client gets its ack, and a
/// read that was in flight across an invalidation is not cached (a generation per set). A shopper with no
/// profile yet is cached as such (null) under the same rules. Thread-safe.
/// </summary>
public sealed class ShopperProfileCache : IShopperProfiles, IStatsSource
{
    private readonly IShopperProfiles _source;
    private readonly ShopperProfileCacheOptions _options;
    private readonly TimeProvider _time;
    private readonly Entry?[] _slots;     // [sets × 2]: set s holds slots 2s and 2s + 1
    private readonly long[] _generations; // [sets]: bumped by each invalidation of a shopper of the set
    private readonly int _setMask;
    private readonly long _maxAgeTicks, _refreshTicks, _spreadTicks;
    private long _hits, _misses, _refreshes, _invalidations;

    /// <summary>A cache in front of <paramref name="source"/> (the session grains in <c>engine serve</c>).</summary>
    public ShopperProfileCache(IShopperProfiles source, ShopperProfileCacheOptions? options = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _options = options ?? new ShopperProfileCacheOptions();
        _options.Validate();
        _time = time ?? TimeProvider.System;
        _slots = new Entry?[_options.Slots];
        _generations = new long[_options.Slots / 2];
        _setMask = _options.Slots / 2 - 1;
        _maxAgeTicks = (long)(_options.MaxAge.TotalSeconds * _time.TimestampFrequency);
        _refreshTicks = (long)(_options.RefreshAfter.TotalSeconds * _time.TimestampFrequency);
        _spreadTicks = (long)(_refreshTicks * _options.RefreshSpread);
    }

    /// <summary>Answers from the cache since start.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Reads from the source on the request path since start (absent, expired or invalidated).</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <inheritdoc/>
    public ValueTask<float[]?> GetAsync(string customerId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(customerId);
        int hash = customerId.GetHashCode();
        int set = SetOf(hash);
        long now = _time.GetTimestamp();
        Entry? entry = Find(set, customerId);
        if (entry is not null && now - entry.FetchStarted <= _maxAgeTicks)
        {
            Interlocked.Increment(ref _hits);
            if (now - entry.FetchStarted > RefreshTicks(hash) && Interlocked.Exchange(ref entry.Refreshing, 1) == 0)
            {
                Interlocked.Increment(ref _refreshes);
                _ = RefreshAsync(set, customerId);
            }
            return ValueTask.FromResult(entry.Vector);
        }
        Interlocked.Increment(ref _misses);
        return FetchAsync(set, customerId, cancellationToken);
    }

    /// <summary>
    /// Drops <paramref name="customerId"/>'s entry: the next read goes to the source. Call it after a change
    /// to the shopper's session was acknowledged (reads already in flight then are not cached).
    /// </summary>
    public void Invalidate(string customerId)
    {
        ArgumentNullException.ThrowIfNull(customerId);
        int set = SetOf(customerId);
        Interlocked.Increment(ref _generations[set]); // first: a read that finishes after this point will not be stored
        for (int i = 2 * set; i < 2 * set + 2; i++)
        {
            Entry? e = Volatile.Read(ref _slots[i]);
            if (e is not null && e.Customer == customerId) Interlocked.CompareExchange(ref _slots[i], null, e);
        }
        Interlocked.Increment(ref _invalidations);
    }

    /// <inheritdoc/>
    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "recommend.profile_cache_hits", Value = Hits });
        entries.Add(new StatEntry { Name = "recommend.profile_cache_misses", Value = Misses });
        entries.Add(new StatEntry { Name = "recommend.profile_cache_refreshes", Value = Interlocked.Read(ref _refreshes) });
        entries.Add(new StatEntry { Name = "recommend.profile_cache_invalidations", Value = Interlocked.Read(ref _invalidations) });
    }

    private int SetOf(string customerId) => SetOf(customerId.GetHashCode());

    private int SetOf(int hash) => (int)((uint)hash & (uint)_setMask);

    /// <summary>This shopper's refresh age in timestamp ticks: RefreshAfter less up to RefreshSpread of it, from the hash's
    /// top 16 bits (the set index uses the low ones).</summary>
    private long RefreshTicks(int hash) => _refreshTicks - (long)(_spreadTicks * ((uint)hash >> 16) / 65536.0);

    private Entry? Find(int set, string customerId)
    {
        Entry? a = Volatile.Read(ref _slots[2 * set]);
        if (a is not null && a.Customer == customerId) return a;
        Entry? b = Volatile.Read(ref _slots[2 * set + 1]);
        return b is not null && b.Customer == customerId ? b : null;
    }

    private async ValueTask<float[]?> FetchAsync(int set, string customerId, CancellationToken cancellationToken)
    {
        long generation = Volatile.Read(ref _generations[set]);
        long started = _time.GetTimestamp();
        float[]? vector = await _source.GetAsync(customerId, cancellationToken).ConfigureAwait(false);
        // An unchanged profile (the usual re-read: a shopper's own events invalidate the entry instead) renews the cached
        // entry: the array just read dies young. A new entry per re-read was promoted to gen 2 with its 1.5 KB vector
        // (one re-read per shopper per RefreshAfter: ~10 % of the Recommends at 2,000/s over 10k shoppers).
        if (Find(set, customerId) is { } current && SameVector(current.Vector, vector) && Volatile.Read(ref _generations[set]) == generation)
        {
            Volatile.Write(ref current.FetchStarted, started);
            Volatile.Write(ref current.Refreshing, 0);
            return current.Vector;
        }
        Store(set, new Entry(customerId, vector, started), generation);
        return vector;
    }

    private static bool SameVector(float[]? a, float[]? b) =>
        a is null || b is null ? a == b : System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));

    private async Task RefreshAsync(int set, string customerId)
    {
        try
        {
            await FetchAsync(set, customerId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The source failed: keep serving the cached profile until it expires; a later hit retries.
            if (Find(set, customerId) is { } entry) Volatile.Write(ref entry.Refreshing, 0);
        }
    }

    /// <summary>Puts <paramref name="entry"/> in its set unless the set was invalidated since <paramref name="generation"/>.</summary>
    private void Store(int set, Entry entry, long generation)
    {
        int a = 2 * set, b = a + 1;
        // Replace this shopper's own slot, else an empty one, else the older of the two.
        Entry? ea = Volatile.Read(ref _slots[a]), eb = Volatile.Read(ref _slots[b]);
        int target = ea is not null && ea.Customer == entry.Customer ? a
                   : eb is not null && eb.Customer == entry.Customer ? b
                   : ea is null ? a
                   : eb is null ? b
                   : ea.FetchStarted <= eb.FetchStarted ? a : b;
        Interlocked.Exchange(ref _slots[target], entry); // full fence: the write is visible before the generation is read
        // An invalidation that raced with this read (its generation bump came after the read began) must
        // win: take the entry back out. One whose bump comes after this check finds the entry and drops it.
        if (Volatile.Read(ref _generations[set]) != generation) Interlocked.CompareExchange(ref _slots[target], null, entry);
    }

    /// <summary>One cached read. Immutable but for its age (renewed by a re-read that found the same vector) and the refresh flag.</summary>
    private sealed class Entry(string customer, float[]? vector, long fetchStarted)
    {
        public readonly string Customer = customer;
        public readonly float[]? Vector = vector;     // [dims] f32, or null: no profile yet
        public long FetchStarted = fetchStarted;      // when the read that gave Vector (or confirmed it) began
        public int Refreshing;                        // 1 while a background re-read runs
    }
}

/// <summary>
/// Hands events to the control plane, then drops their shoppers' cached profiles (<see cref="ShopperProfileCache.Invalidate"/>)
/// before the server acknowledges them: the shopper's next Recommend reads the profile that includes the event.
/// </summary>
public sealed class ProfileInvalidatingEventSink(IEventSink inner, ShopperProfileCache cache) : IEventSink
{
    /// <inheritdoc/>
    public async ValueTask<int> AcceptAsync(IReadOnlyList<ShopperEvent> events, CancellationToken cancellationToken)
    {
        try
        {
            return await inner.AcceptAsync(events, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Also on failure: part of the batch may have been applied.
            string? last = null;
            foreach (ShopperEvent e in events)
                if (e.CustomerId is { Length: > 0 } id && id != last)
                {
                    cache.Invalidate(id);
                    last = id;
                }
        }
    }
}
