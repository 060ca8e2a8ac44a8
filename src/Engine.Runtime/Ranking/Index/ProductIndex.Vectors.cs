namespace Engine.Runtime.Ranking;

public sealed partial class ProductIndex
{
    /// <summary>
    /// Copies the product's stored vector, as rescoring sees it (<c>s1 · q1 + s2 · q2</c>, the scanned int8 row plus the
    /// residual layer, so within s1/508 per value of what was upserted), into <paramref name="vector"/> <c>[Dimensions]</c> f32;
    /// false, and <paramref name="vector"/> untouched, for an unknown id. Lets a host hand the same
    /// product vectors to other consumers (the control plane's session profiles) without keeping an f32 copy.
    /// </summary>
    public bool TryGetVector(string productId, Span<float> vector)
    {
        ArgumentNullException.ThrowIfNull(productId);
        if (vector.Length != Dimensions) throw new ArgumentException($"vector has room for {vector.Length} values, the index holds {Dimensions}", nameof(vector));
        sbyte[] row = new sbyte[Dimensions];
        Span<float> scale = stackalloc float[1];
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_slotOf.TryGetValue(productId, out int slot)) return false;
            _store.ReadRows(slot, 1, row, scale);
            var residual = _residual.AsSpan(slot * Dimensions, Dimensions);
            float s2 = _residualScale[slot];
            for (int i = 0; i < row.Length; i++) vector[i] = row[i] * scale[0] + residual[i] * s2;
        }
        finally { _lock.ExitReadLock(); }
        return true;
    }
}
