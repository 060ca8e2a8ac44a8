using System.Text;

namespace Engine.Control.Experiments;

/// <summary>A hash that is the same in every process and version (string.GetHashCode is randomized
/// per process, so it cannot assign buckets).</summary>
public static class BucketHash
{
    // FNV-1a 64 parameters (Fowler–Noll–Vo, IETF draft-eastlake-fnv).
    private const ulong FnvOffset = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    /// <summary>FNV-1a over the UTF-8 bytes of <paramref name="prefix"/>, ':' and <paramref name="value"/>,
    /// finished with MurmurHash3's fmix64 so low bits mix well for modulo.</summary>
    public static ulong Hash(string prefix, string value)
    {
        var h = FnvOffset;
        h = Add(h, prefix);
        h = (h ^ ':') * FnvPrime;
        h = Add(h, value);
        // fmix64 (MurmurHash3 finalizer, Austin Appleby).
        h ^= h >> 33; h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53UL;
        h ^= h >> 33;
        return h;
    }

    /// <summary>The bucket of <paramref name="value"/> in [0, <paramref name="buckets"/>).</summary>
    public static int Bucket(string prefix, string value, int buckets) => (int)(Hash(prefix, value) % (ulong)buckets);

    private static ulong Add(ulong h, string s)
    {
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetMaxByteCount(s.Length) <= buffer.Length
            ? buffer[..Encoding.UTF8.GetBytes(s, buffer)]
            : Encoding.UTF8.GetBytes(s);
        foreach (var b in bytes) h = (h ^ b) * FnvPrime;
        return h;
    }
}
