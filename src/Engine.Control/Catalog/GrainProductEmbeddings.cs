using System.Collections.Concurrent;

namespace Engine.Control.Catalog;

/// <summary>Default <see cref="IProductEmbeddings"/>: reads the product grain, and keeps known
/// products' vectors for <see cref="CacheLifetime"/> so a hot product costs no grain call per event.
/// A re-embedded product reaches profiles within that time; unknown products are not cached, so a
/// product added a moment ago is seen at once. The ranking index can register a local lookup instead.</summary>
internal sealed class GrainProductEmbeddings(IGrainFactory grains, TimeProvider time) : IProductEmbeddings
{
    /// <summary>How long a vector is reused: profiles decay over tens of minutes, so seconds of
    /// staleness after a catalog change do not matter.</summary>
    public static readonly TimeSpan CacheLifetime = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, (float[] Vector, DateTimeOffset Expires)> _cache = new();

    public async ValueTask<float[]?> GetAsync(string productId)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(productId, out var hit) && hit.Expires > now) return hit.Vector;
        var info = await grains.GetGrain<IProductGrain>(productId).Get();
        if (info is null) return null;
        var vector = info.Embedding ?? [];
        _cache[productId] = (vector, now + CacheLifetime);
        return vector;
    }
}
