using Engine.Core.Backend;
using Engine.Runtime.Llama;

namespace Engine.Runtime.Scheduling;

/// <summary>
/// A forward step over the rows of many sequences at once (continuous batching). Row-wise work
/// (embedding, norms, every matrix product, RoPE, SwiGLU, residuals) runs over all rows together, so
/// each weight matrix is read once per step for every stream; RoPE, the KV store and attention run against each
/// stream's own <see cref="KvCache"/>, all streams of a layer in one
/// <see cref="IComputeBackend.RopeStoreKvAttentionBatch"/> call. Same layer order as <see cref="LlamaDecoder"/>.
/// Not thread-safe: the scheduler's loop owns it.
/// </summary>
public sealed class BatchedDecoder : IDisposable
{
    private readonly LlamaConfig _c;
    private readonly IComputeBackend _b;
    private readonly LlamaForwardPass _pass;     // buffers, targets and layer loop shared with LlamaDecoder

    // The step's segments as the batched attention call takes them, [segments]; grown, never shrunk, so
    // steady-state steps allocate nothing.
    private KvCache[] _caches = new KvCache[16];
    private int[] _offsets = new int[16];
    private int[] _counts = new int[16];

    /// <summary>Creates buffers for up to <paramref name="maxRows"/> rows per step and <paramref name="maxLogitRows"/> logits rows.</summary>
    public BatchedDecoder(LlamaModel model, int maxRows, int maxLogitRows, int contextLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLogitRows);
        _c = model.Config;
        _b = model.Backend;
        MaxRows = maxRows;
        MaxLogitRows = Math.Min(maxLogitRows, maxRows);
        ContextLength = contextLength;
        _pass = new LlamaForwardPass(model, maxRows, MaxLogitRows);   // logits [maxLogitRows, vocab]
    }

    /// <summary>Most rows in one step.</summary>
    public int MaxRows { get; }

    /// <summary>Most segments that may ask for logits in one step.</summary>
    public int MaxLogitRows { get; }

    /// <summary>Positions in each stream's KV cache.</summary>
    public int ContextLength { get; }

    /// <summary>Length of a logits row.</summary>
    public int VocabSize => _c.VocabSize;

    /// <summary>A zeroed KV cache for one stream.</summary>
    public KvCache AllocateCache() => _b.AllocateKvCache(_c.Layers, ContextLength, _c.KvDim);

    /// <summary>
    /// Runs one step over <paramref name="tokens"/> <c>[n]</c> laid out by <paramref name="segments"/>
    /// (contiguous, in order) and writes the logits of each segment that wants them, in segment order,
    /// to <paramref name="logits"/> <c>[m, vocab]</c> f32. Returns m.
    /// </summary>
    public int Step(ReadOnlySpan<int> tokens, ReadOnlySpan<BatchSegment> segments, Span<float> logits)
    {
        int n = tokens.Length;
        if (n == 0 || n > MaxRows) throw new ArgumentOutOfRangeException(nameof(tokens), $"a step takes 1..{MaxRows} rows, got {n}");
        var positions = _pass.Positions;
        foreach (var s in segments)
        {
            if (s.Position + s.Count > ContextLength) throw new ContextFullException($"{s.Count} tokens at position {s.Position} exceed the context of {ContextLength}");
            for (int i = 0; i < s.Count; i++) positions[s.Offset + i] = s.Position + i;
        }
        if (_caches.Length < segments.Length)
        {
            int size = Math.Max(segments.Length, 2 * _caches.Length);
            _caches = new KvCache[size];
            _offsets = new int[size];
            _counts = new int[size];
        }
        for (int i = 0; i < segments.Length; i++)
        {
            _caches[i] = segments[i].Cache;
            _offsets[i] = segments[i].Offset;
            _counts[i] = segments[i].Count;
        }

        var attention = new SegmentAttention(_caches.AsSpan(0, segments.Length), _offsets.AsSpan(0, segments.Length), _counts.AsSpan(0, segments.Length));
        _pass.Run(tokens, ref attention);
        Array.Clear(_caches, 0, segments.Length); // hold no finished stream's cache past its step

        // Output head over the last row of each segment that wants logits, gathered into rows 0..m-1 of the head input.
        // When those last rows already are rows 0..m-1 (a step of decode rows only, the steady state), one norm over
        // the m rows replaces m single-row norms: on a GPU each is a launch, and the host's launch rate bounds a step.
        int m = 0;
        bool inPlace = true;
        foreach (var s in segments)
        {
            if (!s.WantLogits) continue;
            if (m == MaxLogitRows) throw new ArgumentException($"at most {MaxLogitRows} segments may want logits");
            inPlace &= s.Offset + s.Count - 1 == m;
            m++;
        }
        if (m == 0) return 0;
        if (inPlace && m > 1)
        {
            _pass.NormAllForHead(m);                                               // head input rows 0..m-1
        }
        else
        {
            int row = 0;
            foreach (var s in segments)
                if (s.WantLogits) _pass.NormRowForHead(s.Offset + s.Count - 1, row++);
        }
        _pass.Head(m);                                                             // logits [m, vocab]
        _b.Read(_pass.Logits, logits[..(m * _c.VocabSize)]);
        return m;
    }

    /// <summary>Many streams: each segment's rows go to that stream's own KV cache, all segments in one backend call per layer.</summary>
    private readonly ref struct SegmentAttention(ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts)
        : ILlamaAttentionStep
    {
        private readonly ReadOnlySpan<KvCache> _caches = caches;
        private readonly ReadOnlySpan<int> _offsets = offsets;
        private readonly ReadOnlySpan<int> _counts = counts;

        public void Attend(LlamaForwardPass pass, int layer, ReadOnlySpan<int> positions)
        {
            var c = pass.Config;
            pass.Backend.RopeStoreKvAttentionBatch(_caches, _offsets, _counts, layer, pass.Q, pass.K, pass.V, pass.Att, positions,
                c.Heads, c.KvHeads, c.HeadDim, c.RopeFreqBase, c.RopeStyle);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Array.Clear(_caches);
        _pass.Dispose();
    }
}
