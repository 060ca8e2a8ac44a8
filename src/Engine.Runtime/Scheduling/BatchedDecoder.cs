using Engine.Core.Backend;
using Engine.Runtime.Llama;

namespace Engine.Runtime.Scheduling;

/// <summary>
/// A forward step over the rows of many sequences at once (continuous batching). Row-wise work
/// (embedding, norms, every matrix product, RoPE, SwiGLU, residuals) runs over all rows together, so
/// each weight matrix is read once per step for every stream; attention and the KV store run per
/// stream against that stream's own <see cref="KvCache"/>. Same layer order as <see cref="LlamaDecoder"/>.
/// Not thread-safe: the scheduler's loop owns it.
/// </summary>
public sealed class BatchedDecoder : IDisposable
{
    private readonly LlamaConfig _c;
    private readonly IComputeBackend _b;
    private readonly LlamaForwardPass _pass;     // buffers, targets and layer loop shared with LlamaDecoder

    // Per-stream views of q/k/v/att for a segment at (offset, count), made on first use and kept:
    // a step's layout repeats across steps, so steady-state steps allocate no slices.
    private readonly Dictionary<(int Offset, int Count), SegmentViews> _views = [];

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
        foreach (var s in segments) ViewsOf(s);   // create any missing views before the layer loop

        var attention = new SegmentAttention(segments, _views);
        _pass.Run(tokens, ref attention);

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

    private SegmentViews ViewsOf(in BatchSegment s)
    {
        if (_views.TryGetValue((s.Offset, s.Count), out var v)) return v;
        int dim = _c.Dim, kv = _c.KvDim;
        v = new SegmentViews(
            _pass.Q.Slice(s.Offset * dim, s.Count * dim), _pass.K.Slice(s.Offset * kv, s.Count * kv),
            _pass.V.Slice(s.Offset * kv, s.Count * kv), _pass.Att.Slice(s.Offset * dim, s.Count * dim));
        _views.Add((s.Offset, s.Count), v);
        return v;
    }

    /// <summary>One stream's rows of q [count, dim], k, v [count, kvDim] and att [count, dim].</summary>
    private sealed record SegmentViews(DeviceBuffer Q, DeviceBuffer K, DeviceBuffer V, DeviceBuffer Att);

    /// <summary>Many streams: each segment's rows go to that stream's own KV cache.</summary>
    private readonly ref struct SegmentAttention(ReadOnlySpan<BatchSegment> segments, Dictionary<(int, int), SegmentViews> views)
        : ILlamaAttentionStep
    {
        private readonly ReadOnlySpan<BatchSegment> _segments = segments;

        public void Attend(LlamaForwardPass pass, int layer, ReadOnlySpan<int> positions)
        {
            var c = pass.Config;
            foreach (var s in _segments)
            {
                var v = views[(s.Offset, s.Count)];
                var p = positions.Slice(s.Offset, s.Count);
                pass.Backend.RopeStoreKvAttention(s.Cache, layer, v.Q, v.K, v.V, v.Att, s.Count, p,
                    c.Heads, c.KvHeads, c.HeadDim, c.RopeFreqBase, c.RopeStyle);
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var v in _views.Values) { v.Q.Dispose(); v.K.Dispose(); v.V.Dispose(); v.Att.Dispose(); }
        _views.Clear();
        _pass.Dispose();
    }
}
