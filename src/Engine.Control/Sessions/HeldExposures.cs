using System.Text;
using Engine.Control.Feedback;

namespace Engine.Control.Sessions;

/// <summary>
/// The exposures a session holds for reward attribution (its last <see cref="Capacity"/>, oldest dropped first), in a
/// form that costs no object per exposure: the recommendation ids as UTF-8 in fixed slots of one byte array, arms, times
/// and shadow flags in parallel arrays. The list form it replaces (one <see cref="Exposure"/> record and its id string per
/// served list, held for minutes: 64 lists per shopper) was promoted through every generation, ~150 B per Recommend, part
/// of what made exposure logging cost Recommend its p99 in collections (bench/RESULTS.md, sixth session).
/// </summary>
/// <remarks>An id of more than <see cref="InlineIdBytes"/> UTF-8 bytes is kept as a string (ids the server makes,
/// <c>rec-&lt;server&gt;-&lt;n&gt;</c> and their <c>~shadow</c> twins, fit inline). Arms are the callers' instances (the
/// exposure logger shares one per experiment, arm and model version). Not thread-safe: one session owns it.</remarks>
[GenerateSerializer]
public sealed class HeldExposures
{
    /// <summary>UTF-8 bytes of an id kept inline in its slot.</summary>
    public const int InlineIdBytes = 46;

    private const int SlotBytes = InlineIdBytes + 2; // u16 length (0xFFFF: the id is in _longIds), then the bytes

    [Id(0)] private byte[] _ids;                 // [slots * SlotBytes] UTF-8 ids in their slots
    [Id(1)] private string?[]? _longIds;         // [slots] ids too long for a slot (allocated on the first one)
    [Id(2)] private ArmKey?[] _arms;             // [slots]
    [Id(3)] private long[] _servedTicks;         // [slots] UTC ticks served
    [Id(4)] private bool[] _shadow;              // [slots]
    [Id(5)] private int _first;                  // slot of the oldest (0 until the window is full)
    [Id(6)] private int _count;
    [Id(7)] private int _capacity;

    private const int FirstSlots = 4;

    /// <summary>An empty window of <paramref name="capacity"/> exposures (its arrays grow while it fills, so a shopper
    /// with few exposures is written small).</summary>
    public HeldExposures(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
        var slots = Math.Min(capacity, FirstSlots);
        _ids = new byte[slots * SlotBytes];
        _arms = new ArmKey?[slots];
        _servedTicks = new long[slots];
        _shadow = new bool[slots];
    }

    /// <summary>Most exposures held.</summary>
    public int Capacity => _capacity;

    /// <summary>Exposures held.</summary>
    public int Count => _count;

    private int Slots => _arms.Length;

    /// <summary>Doubles the arrays (up to the capacity); only while not full, so the oldest is still in slot 0.</summary>
    private void Grow()
    {
        var slots = Math.Min(_capacity, Slots * 2);
        Array.Resize(ref _ids, slots * SlotBytes);
        if (_longIds is not null) Array.Resize(ref _longIds, slots);
        Array.Resize(ref _arms, slots);
        Array.Resize(ref _servedTicks, slots);
        Array.Resize(ref _shadow, slots);
    }

    /// <summary>Whether an exposure with this recommendation id is held.</summary>
    public bool Contains(string recommendationId) => Find(recommendationId) >= 0;

    /// <summary>The arm and shadow flag of the newest held exposure with this id, or null.</summary>
    public (ArmKey Arm, bool Shadow)? Lookup(string recommendationId)
    {
        var slot = Find(recommendationId);
        return slot < 0 ? null : (_arms[slot]!, _shadow[slot]);
    }

    /// <summary>Holds an exposure, dropping the oldest when full (no check for a repeated id: see <see cref="Contains"/>).</summary>
    public void Add(string recommendationId, ArmKey arm, DateTimeOffset servedAt, bool shadow)
    {
        ArgumentNullException.ThrowIfNull(recommendationId);
        ArgumentNullException.ThrowIfNull(arm);
        if (_count == _capacity) { Clear(_first); _first = (_first + 1) % Slots; _count--; }
        else if (_count == Slots) Grow();
        var slot = (_first + _count) % Slots;
        var bytes = _ids.AsSpan(slot * SlotBytes, SlotBytes);
        if (Encoding.UTF8.TryGetBytes(recommendationId, bytes[2..], out var n))
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)n);
        else
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes, ushort.MaxValue);
            (_longIds ??= new string?[Slots])[slot] = recommendationId;
        }
        // The arm of the previous exposure when equal (the usual case): the key each call deserialized dies young.
        var previous = _count > 0 ? _arms[(slot + Slots - 1) % Slots] : null;
        _arms[slot] = previous is not null && previous.Equals(arm) ? previous : arm;
        _servedTicks[slot] = servedAt.UtcTicks;
        _shadow[slot] = shadow;
        _count++;
    }

    /// <summary>The held exposures, oldest first, as records (tests, migration checks).</summary>
    public IReadOnlyList<(string RecommendationId, ArmKey Arm, DateTimeOffset ServedAt, bool Shadow)> ToList()
    {
        var list = new List<(string, ArmKey, DateTimeOffset, bool)>(_count);
        for (var i = 0; i < _count; i++)
        {
            var slot = (_first + i) % Slots;
            list.Add((Id(slot), _arms[slot]!, new DateTimeOffset(_servedTicks[slot], TimeSpan.Zero), _shadow[slot]));
        }
        return list;
    }

    /// <summary>The newest <paramref name="capacity"/> exposures in a window of that capacity.</summary>
    public HeldExposures Resized(int capacity)
    {
        var copy = new HeldExposures(capacity);
        foreach (var (id, arm, at, shadow) in ToList().Skip(Math.Max(0, _count - capacity))) copy.Add(id, arm, at, shadow);
        return copy;
    }

    private string Id(int slot)
    {
        var bytes = _ids.AsSpan(slot * SlotBytes, SlotBytes);
        int n = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes);
        return n == ushort.MaxValue ? _longIds![slot]! : Encoding.UTF8.GetString(bytes.Slice(2, n));
    }

    private void Clear(int slot)
    {
        _ids.AsSpan(slot * SlotBytes, SlotBytes).Clear();
        if (_longIds is not null) _longIds[slot] = null;
        _arms[slot] = null;
    }

    /// <summary>The slot of the newest held exposure with this id, or -1 (newest first: an id is held once, and a
    /// reward is most likely for a recent list).</summary>
    private int Find(string recommendationId)
    {
        Span<byte> wanted = stackalloc byte[InlineIdBytes];
        var inline = Encoding.UTF8.TryGetBytes(recommendationId, wanted, out var n);
        for (var i = _count - 1; i >= 0; i--)
        {
            var slot = (_first + i) % Slots;
            var bytes = _ids.AsSpan(slot * SlotBytes, SlotBytes);
            int length = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes);
            if (inline ? length == n && bytes.Slice(2, n).SequenceEqual(wanted[..n])
                       : length == ushort.MaxValue && _longIds![slot] == recommendationId)
                return slot;
        }
        return -1;
    }
}
