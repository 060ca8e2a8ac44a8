using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Engine.Control.Sessions;

namespace Engine.Control.Feedback;

/// <summary>
/// A stats shard's decision log in compact form: the latest <see cref="Capacity"/> logged recommendations in one ring of
/// fixed-size slots (structs, no references) and one byte ring holding each decision's variable part as UTF-8. A decision
/// costs no object of its own: the list form it replaces (<see cref="LoggedDecision"/> with its context string and one
/// <see cref="LoggedAction"/> per product, ~3.5 KB in ~14 objects for a list of 10) lived seconds, long enough to be
/// promoted, and the collections it caused cost Recommend its p99 at 2,000 requests/s (bench/RESULTS.md). Exported
/// decisions are rebuilt as <see cref="LoggedDecision"/> records equal to what the list form held.
/// </summary>
/// <remarks>
/// Record layout in the byte ring (little-endian, one contiguous run; a record that would cross the end starts at 0):
/// <code>
/// u16 id length, id (UTF-8) | i32 context length, context (UTF-8) |
/// per action: u16 product length, product (UTF-8), f32 probability, i32 clicks, i32 carts, i32 purchases, i32 returns, f64 reward
/// </code>
/// The byte ring grows (from <see cref="InitialBytes"/> to about 1.25 times what a full log of the records seen needs) while it holds fewer than <see cref="Capacity"/>
/// decisions, up to <see cref="MaxBytes"/>; past it the oldest decisions make room, so a log of very large contexts
/// keeps fewer. Recommendation ids are found through a 64-bit hash (FNV-1a of the UTF-8 id) checked against the stored
/// id. Not thread-safe: one grain owns it.
/// </remarks>
[GenerateSerializer]
public sealed class DecisionLog
{
    /// <summary>Bytes of the byte ring of a new log.</summary>
    public const int InitialBytes = 64 * 1024;

    /// <summary>Largest byte ring (per shard): 2,000 decisions of 10 products take ~2.6 MB.</summary>
    public const int MaxBytes = 64 * 1024 * 1024;

    private const int ActionFixedBytes = 4 + 4 * 4 + 8; // probability, four counts, reward
    private const int MaxIdBytes = ushort.MaxValue;

    [Id(0)] private Slot[] _slots;          // [capacity] ring; _slots[(_first + i) % capacity] = i-th oldest
    [Id(1)] private int _first;
    [Id(2)] private int _count;
    [Id(3)] private byte[] _bytes;          // [ring bytes] UTF-8 + binary records
    [Id(4)] private long _bytesStart;       // monotonic position of the oldest record (offset = position % length)
    [Id(5)] private long _bytesEnd;         // monotonic position past the newest record
    [Id(6)] private List<ArmKey> _arms = []; // distinct arm keys (a shard holds one)
    [NonSerialized] private Dictionary<long, int>? _index; // id hash → slot (rebuilt after load)
    [NonSerialized] private int _maxBytes;                 // 0: MaxBytes (tests set less to reach the byte limit)

    /// <summary>An empty log keeping at most <paramref name="capacity"/> decisions.</summary>
    public DecisionLog(int capacity) : this(capacity, MaxBytes)
    {
    }

    /// <summary>An empty log whose byte ring stops growing at <paramref name="maxBytes"/> (tests: the byte limit).</summary>
    internal DecisionLog(int capacity, int maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _slots = new Slot[capacity];
        _bytes = new byte[Math.Min(InitialBytes, maxBytes)];
        _maxBytes = maxBytes;
    }

    private int ByteLimit => _maxBytes > 0 ? _maxBytes : MaxBytes;

    /// <summary>Decisions held.</summary>
    public int Count => _count;

    /// <summary>Most decisions held (older ones are dropped).</summary>
    public int Capacity => _slots.Length;

    /// <summary>Bytes of the byte ring now (it grows while the log fills).</summary>
    public int ByteCapacity => _bytes.Length;

    /// <summary>The same decisions in a log of another capacity (the newest <paramref name="capacity"/> of them).</summary>
    public DecisionLog Resized(int capacity)
    {
        var log = new DecisionLog(capacity, ByteLimit);
        for (var i = Math.Max(0, _count - capacity); i < _count; i++)
        {
            ref var s = ref _slots[(_first + i) % _slots.Length];
            var record = Record(in s);
            var at = log.Reserve(record.Length); // may grow log._bytes: read it after
            record.CopyTo(log._bytes.AsSpan(at, record.Length));
            log.Commit(s with { Arm = log.ArmIndex(_arms[s.Arm]) }, record.Length);
        }
        return log;
    }

    /// <summary>Whether a decision with this recommendation id is held.</summary>
    public bool Contains(string recommendationId) => Find(recommendationId) >= 0;

    /// <summary>Logs an exposure (a replayed recommendation id changes nothing; returns false then).</summary>
    /// <param name="recommendationId">The recommendation.</param>
    /// <param name="arm">Experiment, arm, model version.</param>
    /// <param name="context">The context as UTF-8 (the server's form), or empty to use <paramref name="contextText"/>.</param>
    /// <param name="contextText">The context as a string (used when <paramref name="context"/> is empty).</param>
    /// <param name="servedAt">When it was served.</param>
    /// <param name="shadow">Computed and logged only, never shown.</param>
    /// <param name="actions">Shown products by position, with their probabilities.</param>
    public bool Add(string recommendationId, ArmKey arm, ReadOnlySpan<byte> context, string? contextText, DateTimeOffset servedAt, bool shadow,
                    IReadOnlyList<ExposedAction>? actions)
    {
        ArgumentNullException.ThrowIfNull(recommendationId);
        ArgumentNullException.ThrowIfNull(arm);
        if (Contains(recommendationId)) return false;
        var n = actions?.Count ?? 0;
        var actionBytes = 0;
        for (var i = 0; i < n; i++) actionBytes += 2 + Utf8Length(actions![i].ProductId) + ActionFixedBytes;
        var w = Begin(recommendationId, context, contextText, actionBytes, out var o);
        for (var i = 0; i < n; i++)
        {
            o = WriteString(w, o, actions![i].ProductId);
            o = WriteAction(w, o, actions[i].Probability, 0, 0, 0, 0, 0);
        }
        Commit(new Slot { IdHash = Hash(recommendationId), ServedAt = servedAt, Shadow = shadow, Arm = ArmIndex(arm), Actions = n }, w.Length);
        return true;
    }

    /// <summary>Logs a decision as the list form held it, rewards included (migration of a stored list-form log); a
    /// recommendation id already held changes nothing (returns false).</summary>
    public bool Add(LoggedDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        if (Contains(decision.RecommendationId)) return false;
        var actions = decision.Actions.OrderBy(a => a.Position).ToArray();
        var actionBytes = 0;
        foreach (var a in actions) actionBytes += 2 + Utf8Length(a.ProductId) + ActionFixedBytes;
        var w = Begin(decision.RecommendationId, default, decision.Context, actionBytes, out var o);
        foreach (var a in actions)
        {
            o = WriteString(w, o, a.ProductId);
            o = WriteAction(w, o, a.Probability, a.Clicks, a.Carts, a.Purchases, a.Returns, a.Reward);
        }
        Commit(new Slot
        {
            IdHash = Hash(decision.RecommendationId), ServedAt = decision.ServedAt, UpdatedAt = decision.UpdatedAt ?? default,
            Shadow = decision.Shadow, Arm = ArmIndex(decision.Arm), Actions = actions.Length,
        }, w.Length);
        return true;
    }

    /// <summary>Reserves a record with <paramref name="actionBytes"/> of actions and writes its id and context; returns
    /// the record's bytes and, in <paramref name="o"/>, where the actions go.</summary>
    private Span<byte> Begin(string id, ReadOnlySpan<byte> context, string? contextText, int actionBytes, out int o)
    {
        var contextBytes = context.IsEmpty ? Encoding.UTF8.GetByteCount(contextText ?? "") : context.Length;
        var length = 2 + Utf8Length(id) + 4 + contextBytes + actionBytes;
        var at = Reserve(length); // may grow the byte ring: read _bytes after it
        var w = _bytes.AsSpan(at, length);
        o = WriteString(w, 0, id);
        BinaryPrimitives.WriteInt32LittleEndian(w[o..], contextBytes);
        o += 4;
        if (context.IsEmpty) Encoding.UTF8.GetBytes(contextText ?? "", w.Slice(o, contextBytes));
        else context.CopyTo(w[o..]);
        o += contextBytes;
        return w;
    }

    /// <summary>Joins a reward to the shown product it names; false when the decision is not held (logged before this
    /// log's window) or did not show that product.</summary>
    public bool Join(string recommendationId, string? productId, FeedbackKind kind, double reward, DateTimeOffset now)
    {
        var slot = Find(recommendationId);
        if (slot < 0 || productId is null) return false;
        ref var s = ref _slots[slot];
        var record = _bytes.AsSpan((int)(s.Start % _bytes.Length), s.Length);
        var o = SkipHeader(record);
        var productBytes = Encoding.UTF8.GetByteCount(productId);
        Span<byte> wanted = productBytes <= 256 ? stackalloc byte[256] : new byte[productBytes];
        wanted = wanted[..Encoding.UTF8.GetBytes(productId, wanted)];
        for (var i = 0; i < s.Actions; i++)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(record[o..]);
            var product = record.Slice(o + 2, length);
            o += 2 + length;
            if (!product.SequenceEqual(wanted)) { o += ActionFixedBytes; continue; }
            var counts = record.Slice(o + 4, 16); // clicks, carts, purchases, returns
            var which = kind switch
            {
                FeedbackKind.Click => 0,
                FeedbackKind.AddToCart => 1,
                FeedbackKind.Purchase => 2,
                FeedbackKind.Return => 3,
                _ => -1,
            };
            if (which >= 0)
            {
                var c = counts[(which * 4)..];
                BinaryPrimitives.WriteInt32LittleEndian(c, BinaryPrimitives.ReadInt32LittleEndian(c) + 1);
                var r = record[(o + 20)..];
                BinaryPrimitives.WriteDoubleLittleEndian(r, BinaryPrimitives.ReadDoubleLittleEndian(r) + reward);
            }
            s.UpdatedAt = now;
            return true;
        }
        return false;
    }

    /// <summary>The <paramref name="i"/>-th oldest decision (0 = oldest) as a record.</summary>
    public LoggedDecision this[int i]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(i);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, _count);
            ref var s = ref _slots[(_first + i) % _slots.Length];
            var record = Record(in s);
            int idLength = BinaryPrimitives.ReadUInt16LittleEndian(record);
            var id = Encoding.UTF8.GetString(record.Slice(2, idLength));
            var o = 2 + idLength;
            var contextLength = BinaryPrimitives.ReadInt32LittleEndian(record[o..]);
            var context = Encoding.UTF8.GetString(record.Slice(o + 4, contextLength));
            o += 4 + contextLength;
            var actions = new LoggedAction[s.Actions];
            for (var a = 0; a < actions.Length; a++)
            {
                int length = BinaryPrimitives.ReadUInt16LittleEndian(record[o..]);
                var product = Encoding.UTF8.GetString(record.Slice(o + 2, length));
                var f = record[(o + 2 + length)..];
                actions[a] = new LoggedAction(product, a + 1, BinaryPrimitives.ReadSingleLittleEndian(f),
                    BinaryPrimitives.ReadInt32LittleEndian(f[4..]), BinaryPrimitives.ReadInt32LittleEndian(f[8..]),
                    BinaryPrimitives.ReadInt32LittleEndian(f[12..]), BinaryPrimitives.ReadInt32LittleEndian(f[16..]),
                    BinaryPrimitives.ReadDoubleLittleEndian(f[20..]));
                o += 2 + length + ActionFixedBytes;
            }
            return new LoggedDecision(id, _arms[s.Arm], context, s.ServedAt, s.Shadow, actions, s.UpdatedAt == default ? null : s.UpdatedAt);
        }
    }

    /// <summary>The newest <paramref name="max"/> decisions, oldest first.</summary>
    public LoggedDecision[] Latest(int max)
    {
        var take = Math.Clamp(max, 0, _count);
        var result = new LoggedDecision[take];
        for (var i = 0; i < take; i++) result[i] = this[_count - take + i];
        return result;
    }

    private ReadOnlySpan<byte> Record(in Slot s) => _bytes.AsSpan((int)(s.Start % _bytes.Length), s.Length);

    private static int SkipHeader(ReadOnlySpan<byte> record)
    {
        int o = 2 + BinaryPrimitives.ReadUInt16LittleEndian(record);
        return o + 4 + BinaryPrimitives.ReadInt32LittleEndian(record[o..]);
    }

    /// <summary>The slot of the decision with this id, or -1.</summary>
    private int Find(string recommendationId)
    {
        if (_count == 0 || !Index().TryGetValue(Hash(recommendationId), out var slot)) return -1;
        var record = Record(in _slots[slot]);
        int length = BinaryPrimitives.ReadUInt16LittleEndian(record);
        var id = record.Slice(2, length);
        Span<byte> wanted = length <= 256 ? stackalloc byte[256] : new byte[length + 4];
        return Encoding.UTF8.TryGetBytes(recommendationId, wanted, out var written) && id.SequenceEqual(wanted[..written]) ? slot : -1;
    }

    private Dictionary<long, int> Index()
    {
        if (_index is not null) return _index;
        _index = new Dictionary<long, int>(_slots.Length);
        for (var i = 0; i < _count; i++)
        {
            var slot = (_first + i) % _slots.Length;
            _index[_slots[slot].IdHash] = slot; // a (64-bit) collision keeps the newer: the older is no longer joinable
        }
        return _index;
    }

    /// <summary>Makes room for a record of <paramref name="length"/> bytes and returns its offset in the byte ring: drops
    /// the oldest decisions when the slots are full, grows the byte ring while it is smaller than the log needs at its
    /// current average record size (and <see cref="MaxBytes"/>), else drops the oldest decisions until the record fits.</summary>
    private int Reserve(int length)
    {
        while (true)
        {
            if (_count == _slots.Length) { RemoveOldest(); continue; }
            if (_count == 0) _bytesStart = _bytesEnd = 0; // nothing refers to positions: start over at offset 0
            var offset = (int)(_bytesEnd % _bytes.Length);
            var pad = offset + length > _bytes.Length ? _bytes.Length - offset : 0; // a record never wraps: start at 0
            var free = _bytes.Length - (_bytesEnd - _bytesStart);
            if (length + pad <= free)
            {
                _bytesEnd += pad;
                if (_count == 0) _bytesStart = _bytesEnd;
                return (int)(_bytesEnd % _bytes.Length);
            }
            if (_count == 0 || (_bytes.Length < ByteLimit && _bytes.Length < BytesWanted(length))) { Grow(length); continue; }
            RemoveOldest();
        }
    }

    /// <summary>Byte ring size for a full log at the current average record size, with a quarter to spare (padding at
    /// the wrap, sizes that vary).</summary>
    private long BytesWanted(int length)
    {
        var average = _count == 0 ? length : (double)(_bytesEnd - _bytesStart + length) / (_count + 1);
        return (long)(average * _slots.Length * 1.25);
    }

    private void Commit(Slot slot, int length)
    {
        var index = (_first + _count) % _slots.Length;
        slot.Start = _bytesEnd;
        slot.Length = length;
        _slots[index] = slot;
        _count++;
        _bytesEnd += length;
        Index()[slot.IdHash] = index;
    }

    private void RemoveOldest()
    {
        ref var s = ref _slots[_first];
        if (Index().TryGetValue(s.IdHash, out var at) && at == _first) _index!.Remove(s.IdHash);
        s = default;
        _first = (_first + 1) % _slots.Length;
        _count--;
        _bytesStart = _count == 0 ? _bytesEnd : _slots[_first].Start;
    }

    /// <summary>Copies the records, oldest first, into a larger byte ring (from offset 0).</summary>
    private void Grow(int length)
    {
        var used = _bytesEnd - _bytesStart;
        // To what a full log needs (not the next power of two: the whole ring is written with the shard's state), at
        // least half again as large (few growths while it fills), in 64 KiB steps.
        var size = Math.Max(Math.Max(_bytes.Length * 3L / 2, used + length), BytesWanted(length));
        size = (size + 0xFFFF) & ~0xFFFFL;
        if (size > ByteLimit) size = Math.Max(ByteLimit, used + length);
        var bytes = new byte[size];
        long at = 0;
        for (var i = 0; i < _count; i++)
        {
            ref var s = ref _slots[(_first + i) % _slots.Length];
            Record(in s).CopyTo(bytes.AsSpan((int)at, s.Length));
            s.Start = at;
            at += s.Length;
        }
        _bytes = bytes;
        _bytesStart = 0;
        _bytesEnd = at;
    }

    private int ArmIndex(ArmKey arm)
    {
        for (var i = 0; i < _arms.Count; i++) if (_arms[i].Equals(arm)) return i;
        _arms.Add(arm);
        return _arms.Count - 1;
    }

    private static int Utf8Length(string s)
    {
        var n = Encoding.UTF8.GetByteCount(s);
        return n <= MaxIdBytes ? n : throw new ArgumentException($"id of {n} UTF-8 bytes is longer than {MaxIdBytes}");
    }

    private static int WriteString(Span<byte> w, int o, string s)
    {
        var n = Encoding.UTF8.GetBytes(s, w[(o + 2)..]);
        BinaryPrimitives.WriteUInt16LittleEndian(w[o..], (ushort)n);
        return o + 2 + n;
    }

    private static int WriteAction(Span<byte> w, int o, float probability, int clicks, int carts, int purchases, int returns, double reward)
    {
        BinaryPrimitives.WriteSingleLittleEndian(w[o..], probability);
        BinaryPrimitives.WriteInt32LittleEndian(w[(o + 4)..], clicks);
        BinaryPrimitives.WriteInt32LittleEndian(w[(o + 8)..], carts);
        BinaryPrimitives.WriteInt32LittleEndian(w[(o + 12)..], purchases);
        BinaryPrimitives.WriteInt32LittleEndian(w[(o + 16)..], returns);
        BinaryPrimitives.WriteDoubleLittleEndian(w[(o + 20)..], reward);
        return o + ActionFixedBytes;
    }

    /// <summary>FNV-1a (64-bit) of the id's UTF-8 bytes: the index key (no string kept per decision).</summary>
    internal static long Hash(string id)
    {
        var n = Encoding.UTF8.GetByteCount(id);
        byte[]? rented = n > 256 ? ArrayPool<byte>.Shared.Rent(n) : null;
        Span<byte> bytes = rented is null ? stackalloc byte[256] : rented;
        bytes = bytes[..Encoding.UTF8.GetBytes(id, bytes)];
        var h = 14695981039346656037UL;
        foreach (var b in bytes) h = (h ^ b) * 1099511628211UL;
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        return (long)h;
    }

    /// <summary>One decision's fixed part (no references: the slot ring is one object).</summary>
    [GenerateSerializer]
    public struct Slot
    {
        /// <summary>Monotonic position of its record in the byte ring.</summary>
        [Id(0)] public long Start;
        /// <summary>Bytes of its record.</summary>
        [Id(1)] public int Length;
        /// <summary><see cref="Hash"/> of its recommendation id.</summary>
        [Id(2)] public long IdHash;
        /// <summary>When it was served.</summary>
        [Id(3)] public DateTimeOffset ServedAt;
        /// <summary>When a reward was last joined (default: never).</summary>
        [Id(4)] public DateTimeOffset UpdatedAt;
        /// <summary>A shadow arm's list.</summary>
        [Id(5)] public bool Shadow;
        /// <summary>Index of its arm key in the log's arm list.</summary>
        [Id(6)] public int Arm;
        /// <summary>Shown products.</summary>
        [Id(7)] public int Actions;
    }
}
