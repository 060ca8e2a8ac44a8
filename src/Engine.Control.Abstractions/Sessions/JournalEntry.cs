namespace Engine.Control.Sessions;

/// <summary>One entry of a shopper's event journal: the events one sink call carried for that shopper,
/// at its position. Sent to the session by the silo's journal applier right after the write, and read
/// back by the session when it replays.</summary>
/// <param name="Position">Where it sits in the shopper's journal.</param>
/// <param name="Events">The events, in the call's order.</param>
[GenerateSerializer, Immutable]
public sealed record JournalEntry([property: Id(0)] JournalPosition Position, [property: Id(1)] CustomerEvent[] Events);

/// <summary>A position in a customer's journal, ordered: a Redis stream id (milliseconds, sequence);
/// the silo's in-memory journal uses (0, n). <see cref="Start"/> is before every entry.</summary>
[GenerateSerializer, Immutable]
public readonly record struct JournalPosition([property: Id(0)] long Major, [property: Id(1)] long Minor) : IComparable<JournalPosition>
{
    /// <summary>Before the first entry.</summary>
    public static JournalPosition Start => default;

    /// <summary>The smallest position after this one.</summary>
    public JournalPosition Next => Minor == long.MaxValue ? new(Major + 1, 0) : new(Major, Minor + 1);

    /// <inheritdoc/>
    public int CompareTo(JournalPosition other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    /// <summary>The later of two positions.</summary>
    public static JournalPosition Max(JournalPosition a, JournalPosition b) => a.CompareTo(b) >= 0 ? a : b;

    /// <summary>Redis stream id form, "major-minor".</summary>
    public override string ToString() => $"{Major}-{Minor}";

    /// <summary>Parses a Redis stream id ("ms-seq").</summary>
    public static JournalPosition Parse(string id)
    {
        var dash = id.IndexOf('-');
        if (dash <= 0 || !long.TryParse(id.AsSpan(0, dash), out var major) || !long.TryParse(id.AsSpan(dash + 1), out var minor))
            throw new FormatException($"'{id}' is not a journal position (a Redis stream id 'ms-seq')");
        return new(major, minor);
    }
}
