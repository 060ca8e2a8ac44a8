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
        var info = await GetProductAsync(productId);
        if (info is null) return null;
        var vector = info.Embedding ?? [];
        _cache[productId] = (vector, now + CacheLifetime);
        return vector;
    }

    /// <summary>Reads the product grain; a call rejected because the silo hosting it is leaving the cluster
    /// (OrleansMessageRejectionException, e.g. "Silo stopping") is tried again a few times, so a session's profile
    /// read or journal drain does not fail while a silo shuts down (RedisClusterTests stops one mid-traffic).</summary>
    private async Task<ProductInfo?> GetProductAsync(string productId)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await grains.GetGrain<IProductGrain>(productId).Get();
            }
            catch (OrleansMessageRejectionException) when (attempt < RejectedCallAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt));
            }
        }
    }

    /// <summary>Attempts at a product read rejected by a leaving silo (about 1.5 s in all).</summary>
    private const int RejectedCallAttempts = 6;
}
