using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Core.Quant;

namespace Engine.Runtime.Ranking;

/// <summary>
/// Two-stage search: the scanner's int8 scan returns the top <c>k · RescoreFactor</c> candidates, and each is rescored
/// with a second int8 layer, the residual of the first quantization, held in host memory beside the facets.
/// <para>
/// A product vector x is stored as <c>x ≈ s1·q1 + s2·q2</c>: q1 = int8(x) with s1 = max|x| / 127 (the scanned row),
/// q2 = int8(x − s1·q1) with s2 = max|x − s1·q1| / 127 ≤ s1 / 254. The error per value drops from s1/2 to s2/2 ≤ s1/508
/// (about 15 bits instead of 8), for one more byte per value (1M × 384: 384 MB scanned + 384 MB of residuals, against
/// 768 MB for f16 copies at 11 bits). The rescored score is <c>scanScore + s2 · Σ_j q[j]·q2[j]</c>: the scan already
/// scored the first layer (the CPU scanner with an int16 query, within ~1e-5 of f32; the GPU in f32), so rescoring reads
/// only the k·R residual rows, never the scanned rows again, and works the same whichever device holds them.
/// </para>
/// </summary>
public sealed partial class ProductIndex
{
    /// <summary>
    /// Default <see cref="RescoreFactor"/>, by measurement (bench/RESULTS.md, "recall with rescoring"): on the clustered
    /// benchmark catalogs (100k and 1M × 384) recall@50 goes from 0.982–0.984 (int8 scan alone) to 1.0000 with R = 2, 4 or 8
    /// (200 queries at 100k: 10,000 of 10,000 hits with R = 2; recall@10 likewise). Larger R costs scan time where k is a
    /// large share of the rows (10k rows, batch 64, k = 100, one thread: 118 µs per query raw, 176 with R = 2, ~260 with
    /// R = 4: the scan's heaps hold k·R) and buys recall only in catalogs of near-duplicates (the unit test's tight
    /// cluster: 0.66 alone, 0.85 with R = 2, 0.96 with 4, 0.995 with 8): raise it there.
    /// </summary>
    public const int DefaultRescoreFactor = 2;

    private sbyte[] _residual = [];       // [capacity, Dimensions] int8 q2: second layer, x − s1·q1 quantized
    private float[] _residualScale = [];  // [capacity] f32 s2
    private int _rescoreFactor = DefaultRescoreFactor;

    /// <summary>
    /// Candidates per result that the int8 scan returns for rescoring (<c>k · RescoreFactor</c>, at most the scanner's
    /// <see cref="Core.Backend.IVectorStore.MaxK"/>); 0 turns rescoring off (results are the raw int8 scan's top k, with
    /// its scores). Default <see cref="DefaultRescoreFactor"/>. Safe to change while searches run (each search reads it once).
    /// </summary>
    public int RescoreFactor
    {
        get => Volatile.Read(ref _rescoreFactor);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Volatile.Write(ref _rescoreFactor, value);
        }
    }

    /// <summary>Candidates the scan keeps for a request of <paramref name="k"/> results over <paramref name="count"/> products.</summary>
    private int ScanK(int k, int count, int factor)
    {
        if (factor == 0) return k;
        long wanted = Math.Min((long)k * factor, count);
        return (int)Math.Max(k, Math.Min(wanted, _store.MaxK));
    }

    /// <summary>
    /// Second quantization layer of <paramref name="x"/> (<c>[d]</c> f32) given its first layer (<paramref name="q1"/>, <paramref name="s1"/>):
    /// writes <paramref name="q2"/> <c>[d]</c> int8 and returns s2, so that <c>x ≈ s1·q1 + s2·q2</c>.
    /// </summary>
    internal static float QuantizeResidual(ReadOnlySpan<float> x, ReadOnlySpan<sbyte> q1, float s1, Span<sbyte> q2)
    {
        Span<float> r = x.Length <= 1024 ? stackalloc float[x.Length] : new float[x.Length]; // [d] f32 residual
        for (int j = 0; j < x.Length; j++) r[j] = x[j] - s1 * q1[j];
        return Int8Vector.Quantize(r, q2);
    }

    /// <summary>
    /// Rescores one query's scan candidates (<paramref name="rows"/>/<paramref name="scores"/>, best first, −1 padded) with the
    /// residual layer and writes the best <c>hits.Length</c> by rescored score (ties to the smaller slot) into
    /// <paramref name="hits"/>; returns how many it wrote.
    /// </summary>
    private int Rescore(ReadOnlySpan<float> query, ReadOnlySpan<int> rows, ReadOnlySpan<float> scores, Span<SlotHit> hits)
    {
        int n = rows.IndexOf(-1);
        if (n < 0) n = rows.Length;
        // Sort keys: the rescored score mapped to an order-preserving u32, inverted so that ascending order is best first,
        // in the high half; the slot in the low half breaks ties toward the smaller slot. A primitive sort, no comparer calls.
        Span<ulong> keys = n <= 1024 ? stackalloc ulong[n] : new ulong[n]; // [n] (inverted ordered score, slot)
        int dims = Dimensions;
        for (int i = 0; i < n; i++)
        {
            int slot = rows[i];
            // The candidates' residual rows are scattered over the layer and cold after the scan: ask for the row two
            // candidates ahead so its cache misses overlap this row's arithmetic.
            if (i + Lookahead < n) Prefetch(_residual, (long)rows[i + Lookahead] * dims, dims);
            float score = scores[i] + _residualScale[slot] * Dot(query, _residual.AsSpan(slot * dims, dims));
            uint bits = BitConverter.SingleToUInt32Bits(score);
            uint ordered = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u; // ascending with the float
            keys[i] = ((ulong)~ordered << 32) | (uint)slot;
        }
        keys.Sort();
        int m = Math.Min(hits.Length, n);
        for (int i = 0; i < m; i++)
        {
            uint ordered = ~(uint)(keys[i] >> 32);
            uint bits = (ordered & 0x8000_0000u) != 0 ? ordered & 0x7FFF_FFFFu : ~ordered;
            int slot = (int)(uint)keys[i];
            hits[i] = new SlotHit(slot, _occupancy[slot], _ids[slot]!, BitConverter.UInt32BitsToSingle(bits));
        }
        return m;
    }

    private const int Lookahead = 2;

    /// <summary>Hints <c>values[start, start + length)</c> into the cache (x86 <c>prefetcht0</c> per 64-byte line; nothing elsewhere).</summary>
    private static unsafe void Prefetch(sbyte[] values, long start, int length)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        fixed (sbyte* p = &values[start])
            for (int off = 0; off < length; off += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + off);
    }

    /// <summary>Σ_j q[j]·v[j] of an f32 query and an int8 row (<c>[d]</c> each), 32 values per step where Vector256 is accelerated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Dot(ReadOnlySpan<float> q, ReadOnlySpan<sbyte> v)
    {
        int d = q.Length, j = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && d >= 32)
        {
            ref float qr = ref MemoryMarshal.GetReference(q);
            ref sbyte vr = ref MemoryMarshal.GetReference(v);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 32 <= d; j += 32)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref vr, (nuint)j)); // 32 × int8 → 2 × 16 × int16
                var (w0, w1) = Vector256.Widen(lo);
                var (w2, w3) = Vector256.Widen(hi);
                a0 += Vector256.ConvertToSingle(w0) * Vector256.LoadUnsafe(ref qr, (nuint)j);
                a1 += Vector256.ConvertToSingle(w1) * Vector256.LoadUnsafe(ref qr, (nuint)(j + 8));
                a2 += Vector256.ConvertToSingle(w2) * Vector256.LoadUnsafe(ref qr, (nuint)(j + 16));
                a3 += Vector256.ConvertToSingle(w3) * Vector256.LoadUnsafe(ref qr, (nuint)(j + 24));
            }
            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; j < d; j++) sum += q[j] * v[j];
        return sum;
    }
}
