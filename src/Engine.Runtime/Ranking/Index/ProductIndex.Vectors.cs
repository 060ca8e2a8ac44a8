namespace Engine.Runtime.Ranking;

public sealed partial class ProductIndex
{
    /// <summary>
    /// Copies the product's stored vector, as the scan sees it (<c>scale · int8 row</c>, so within half a
    /// quantization step of what was upserted), into <paramref name="vector"/> <c>[Dimensions]</c> f32;
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
        }
        finally { _lock.ExitReadLock(); }
        for (int i = 0; i < row.Length; i++) vector[i] = row[i] * scale[0];
        return true;
    }
}
