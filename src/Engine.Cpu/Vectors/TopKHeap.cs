namespace Engine.Cpu.Vectors;

/// <summary>
/// A bounded min-heap of (score, row) kept in two caller-owned spans of length k: the root is the worst
/// candidate kept, so a new candidate costs one comparison unless it enters. Order: higher score first,
/// among equal scores the smaller row (what every scanner promises).
/// </summary>
internal static class TopKHeap
{
    /// <summary>True when (s1, r1) ranks below (s2, r2).</summary>
    public static bool Worse(float s1, int r1, float s2, int r2) => s1 < s2 || (s1 == s2 && r1 > r2);

    /// <summary>Offers a candidate to the heap of <paramref name="count"/> entries (capacity = span length); returns the new count.</summary>
    public static int Push(Span<float> scores, Span<int> rows, int count, float score, int row)
    {
        int k = scores.Length;
        if (count < k)
        {
            // Sift up from the new leaf.
            int i = count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (!Worse(score, row, scores[parent], rows[parent])) break;
                scores[i] = scores[parent];
                rows[i] = rows[parent];
                i = parent;
            }
            scores[i] = score;
            rows[i] = row;
            return count;
        }
        if (!Worse(scores[0], rows[0], score, row)) return count;
        // Replace the root and sift down.
        int at = 0;
        while (true)
        {
            int child = 2 * at + 1;
            if (child >= k) break;
            if (child + 1 < k && Worse(scores[child + 1], rows[child + 1], scores[child], rows[child])) child++;
            if (!Worse(scores[child], rows[child], score, row)) break;
            scores[at] = scores[child];
            rows[at] = rows[child];
            at = child;
        }
        scores[at] = score;
        rows[at] = row;
        return count;
    }

    /// <summary>
    /// Merges <c>counts.Length</c> heaps (each <c>k</c> entries of <paramref name="scores"/>/<paramref name="rows"/>,
    /// <paramref name="counts"/> filled) into the best k, best first, padded with (−∞, −1).
    /// </summary>
    public static void MergeSorted(ReadOnlySpan<float> scores, ReadOnlySpan<int> rows, ReadOnlySpan<int> counts, int k,
        Span<float> outScores, Span<int> outRows)
    {
        Span<float> hs = k <= 256 ? stackalloc float[k] : new float[k];
        Span<int> hr = k <= 256 ? stackalloc int[k] : new int[k];
        int n = 0;
        for (int p = 0; p < counts.Length; p++)
            for (int i = 0; i < counts[p]; i++)
                n = Push(hs, hr, n, scores[p * k + i], rows[p * k + i]);
        // Pop worst-first into the tail.
        for (int i = n - 1; i >= 0; i--)
        {
            outScores[i] = hs[0];
            outRows[i] = hr[0];
            n = PopRoot(hs, hr, n);
        }
        for (int i = CountOf(counts, k); i < k; i++)
        {
            outScores[i] = float.NegativeInfinity;
            outRows[i] = -1;
        }
    }

    private static int CountOf(ReadOnlySpan<int> counts, int k)
    {
        long total = 0;
        foreach (int c in counts) total += c;
        return (int)Math.Min(total, k);
    }

    /// <summary>Removes the root of a heap of <paramref name="count"/> entries; returns the new count.</summary>
    private static int PopRoot(Span<float> scores, Span<int> rows, int count)
    {
        count--;
        if (count == 0) return 0;
        float s = scores[count];
        int r = rows[count];
        int at = 0;
        while (true)
        {
            int child = 2 * at + 1;
            if (child >= count) break;
            if (child + 1 < count && Worse(scores[child + 1], rows[child + 1], scores[child], rows[child])) child++;
            if (!Worse(scores[child], rows[child], s, r)) break;
            scores[at] = scores[child];
            rows[at] = rows[child];
            at = child;
        }
        scores[at] = s;
        rows[at] = r;
        return count;
    }
}
