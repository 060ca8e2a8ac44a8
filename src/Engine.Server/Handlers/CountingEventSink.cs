using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>
/// In-process stand-in for the control plane until issue 6 lands: counts events by kind and drops
/// them. Exposes its counts through Stats.
/// </summary>
public sealed class CountingEventSink : IEventSink, IStatsSource
{
    private long _total;
    private readonly long[] _byKind = new long[256];

    /// <summary>Events accepted so far.</summary>
    public long Total => Interlocked.Read(ref _total);

    /// <summary>Events of one kind accepted so far.</summary>
    public long CountOf(EventKind kind) => Interlocked.Read(ref _byKind[(byte)kind]);

    /// <inheritdoc/>
    public ValueTask<int> AcceptAsync(IReadOnlyList<ShopperEvent> events, CancellationToken cancellationToken)
    {
        foreach (ShopperEvent e in events) Interlocked.Increment(ref _byKind[e.Kind]);
        Interlocked.Add(ref _total, events.Count);
        return ValueTask.FromResult(events.Count);
    }

    /// <inheritdoc/>
    public void Collect(ICollection<StatEntry> entries)
    {
        entries.Add(new StatEntry { Name = "events.accepted", Value = Total });
        foreach (EventKind kind in Enum.GetValues<EventKind>())
            if (kind != EventKind.Unknown) entries.Add(new StatEntry { Name = $"events.{kind.ToString().ToLowerInvariant()}", Value = CountOf(kind) });
    }
}
