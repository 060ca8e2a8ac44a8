namespace Engine.Core.Backend;

/// <summary>
/// Argument checks of <see cref="IComputeBackend.RopeStoreKvAttentionBatch"/>, shared by its default body and the
/// backends that override it, so every backend rejects the same bad input the same way before touching any cache.
/// </summary>
public static class BatchSegments
{
    /// <summary>
    /// Throws <see cref="ArgumentException"/> (or <see cref="ArgumentOutOfRangeException"/>) unless: the three segment
    /// spans have one length; every segment has offset ≥ 0 and count ≥ 0, a non-null cache with the KV width
    /// <c>kvHeads * headDim</c> and <paramref name="layer"/> inside it; segments do not overlap; every row lies inside
    /// q, k, v, output and <paramref name="positions"/>; every position lies inside its segment's cache; and heads
    /// share KV heads evenly. Returns the number of rows covered (the largest offset + count).
    /// </summary>
    public static int Check(ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts, int layer,
                            DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output, ReadOnlySpan<int> positions,
                            int heads, int kvHeads, int headDim)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        ArgumentNullException.ThrowIfNull(output);
        if (offsets.Length != caches.Length || counts.Length != caches.Length)
            throw new ArgumentException($"{caches.Length} caches, {offsets.Length} offsets and {counts.Length} counts: one of each per segment", nameof(offsets));
        if (heads <= 0 || kvHeads <= 0 || headDim <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"{heads} query heads of {headDim} cannot share {kvHeads} KV heads evenly", nameof(kvHeads));
        long qWidth = (long)heads * headDim, kvWidth = (long)kvHeads * headDim;
        int rows = 0, lastEnd = 0;
        bool ordered = true;
        for (int s = 0; s < caches.Length; s++)
        {
            int o = offsets[s], c = counts[s];
            if (o < 0 || c < 0) throw new ArgumentOutOfRangeException(nameof(counts), $"segment {s}: offset {o}, count {c}");
            if (c == 0) continue;
            var cache = caches[s] ?? throw new ArgumentNullException(nameof(caches), $"segment {s} has no cache");
            if (cache.KvDim != kvWidth)
                throw new ArgumentException($"segment {s}: {kvHeads} KV heads of {headDim} do not match the cache's KV width {cache.KvDim}", nameof(caches));
            if ((uint)layer >= (uint)cache.Layers) throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} outside segment {s}'s {cache.Layers} layers");
            long end = (long)o + c;
            if (end > positions.Length) throw new ArgumentException($"segment {s} ends at row {end}, past {positions.Length} positions", nameof(positions));
            if (end * qWidth > q.Length || end * qWidth > output.Length)
                throw new ArgumentException($"segment {s} ends at row {end}, past q ({q.Length}) or output ({output.Length}) of width {qWidth}", nameof(q));
            if (end * kvWidth > k.Length || end * kvWidth > v.Length)
                throw new ArgumentException($"segment {s} ends at row {end}, past k ({k.Length}) or v ({v.Length}) of width {kvWidth}", nameof(k));
            for (int r = o; r < end; r++)
                if ((uint)positions[r] >= (uint)cache.ContextLength)
                    throw new ArgumentOutOfRangeException(nameof(positions), $"row {r} (segment {s}): position {positions[r]} outside the context of {cache.ContextLength}");
            if (o < lastEnd) ordered = false;
            lastEnd = (int)end;
            rows = Math.Max(rows, (int)end);
        }
        if (!ordered) CheckDisjoint(offsets, counts);
        return rows;
    }

    // Segments out of order: a quadratic check is fine (a step has at most a few dozen segments).
    private static void CheckDisjoint(ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts)
    {
        for (int a = 0; a < offsets.Length; a++)
            for (int b = a + 1; b < offsets.Length; b++)
                if (counts[a] > 0 && counts[b] > 0 && offsets[a] < offsets[b] + counts[b] && offsets[b] < offsets[a] + counts[a])
                    throw new ArgumentException($"segments {a} and {b} share rows", nameof(offsets));
    }
}
