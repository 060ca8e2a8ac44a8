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
    private readonly LlamaModel _model;
    private readonly LlamaConfig _c;
    private readonly IComputeBackend _b;

    private readonly DeviceBuffer _x;        // [maxRows, dim] residual stream
    private readonly DeviceBuffer _xb;       // [maxRows, dim] normed input of a sub-layer
    private readonly DeviceBuffer _q;        // [maxRows, dim]
    private readonly DeviceBuffer _k;        // [maxRows, kvDim]
    private readonly DeviceBuffer _v;        // [maxRows, kvDim]
    private readonly DeviceBuffer _att;      // [maxRows, dim]
    private readonly DeviceBuffer _proj;     // [maxRows, dim]
    private readonly DeviceBuffer _gate;     // [maxRows, ffn]
    private readonly DeviceBuffer _up;       // [maxRows, ffn]
    private readonly DeviceBuffer _logits;   // [maxLogitRows, vocab]
    private readonly DeviceBuffer[] _xRows;  // row r of _x, [dim]
    private readonly DeviceBuffer[] _xbRows; // row r of _xb, [dim]
    private readonly MatMulTarget[][] _qkv, _attnOut, _gateUp, _down;
    private readonly MatMulTarget[] _head;
    private readonly int[] _positions;       // [maxRows]

    /// <summary>Creates buffers for up to <paramref name="maxRows"/> rows per step and <paramref name="maxLogitRows"/> logits rows.</summary>
    public BatchedDecoder(LlamaModel model, int maxRows, int maxLogitRows, int contextLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLogitRows);
        _model = model;
        _c = model.Config;
        _b = model.Backend;
        MaxRows = maxRows;
        MaxLogitRows = Math.Min(maxLogitRows, maxRows);
        ContextLength = contextLength;
        int dim = _c.Dim, kv = _c.KvDim, ffn = _c.FfnDim, nb = maxRows;
        _x = _b.Allocate(nb * dim);
        _xb = _b.Allocate(nb * dim);
        _q = _b.Allocate(nb * dim);
        _k = _b.Allocate(nb * kv);
        _v = _b.Allocate(nb * kv);
        _att = _b.Allocate(nb * dim);
        _proj = _b.Allocate(nb * dim);
        _gate = _b.Allocate(nb * ffn);
        _up = _b.Allocate(nb * ffn);
        _logits = _b.Allocate(MaxLogitRows * _c.VocabSize);
        _xRows = new DeviceBuffer[nb];
        _xbRows = new DeviceBuffer[nb];
        for (int r = 0; r < nb; r++)
        {
            _xRows[r] = _x.Slice(r * dim, dim);
            _xbRows[r] = _xb.Slice(r * dim, dim);
        }
        var w = model.Weights;
        _qkv = new MatMulTarget[_c.Layers][];
        _attnOut = new MatMulTarget[_c.Layers][];
        _gateUp = new MatMulTarget[_c.Layers][];
        _down = new MatMulTarget[_c.Layers][];
        for (int l = 0; l < _c.Layers; l++)
        {
            var lw = w.Layers[l];
            _qkv[l] = [new(lw.Q, _q), new(lw.K, _k), new(lw.V, _v)];
            _attnOut[l] = [new(lw.AttnOutput, _proj)];
            _gateUp[l] = [new(lw.Gate, _gate), new(lw.Up, _up)];
            _down[l] = [new(lw.Down, _proj)];
        }
        _head = [new(w.Output, _logits)];
        _positions = new int[nb];
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
        int dim = _c.Dim, kv = _c.KvDim, heads = _c.Heads, kvHeads = _c.KvHeads, headDim = _c.HeadDim, ffn = _c.FfnDim;
        float eps = _c.RmsEps;
        foreach (var s in segments)
        {
            if (s.Position + s.Count > ContextLength) throw new ContextFullException($"{s.Count} tokens at position {s.Position} exceed the context of {ContextLength}");
            for (int i = 0; i < s.Count; i++) _positions[s.Offset + i] = s.Position + i;
        }
        ReadOnlySpan<int> positions = _positions.AsSpan(0, n);

        // Per-stream views of q/k/v/att for this step's layout: [count, width] each.
        int segs = segments.Length;
        var views = new (DeviceBuffer Q, DeviceBuffer K, DeviceBuffer V, DeviceBuffer Att)[segs];
        for (int i = 0; i < segs; i++)
        {
            var s = segments[i];
            views[i] = (_q.Slice(s.Offset * dim, s.Count * dim), _k.Slice(s.Offset * kv, s.Count * kv),
                        _v.Slice(s.Offset * kv, s.Count * kv), _att.Slice(s.Offset * dim, s.Count * dim));
        }

        var w = _model.Weights;
        _b.Embed(w.TokenEmbedding, tokens, _x);                                   // x [n, dim]
        for (int l = 0; l < _c.Layers; l++)
        {
            var lw = w.Layers[l];
            _b.RmsNorm(_x, lw.AttnNorm, _xb, n, dim, eps);
            _b.MatMul(_xb, n, _qkv[l]);                                            // one read of Wq, Wk, Wv for all streams
            if (lw.QBias is not null) _b.AddBias(_q, lw.QBias, n);
            if (lw.KBias is not null) _b.AddBias(_k, lw.KBias, n);
            if (lw.VBias is not null) _b.AddBias(_v, lw.VBias, n);
            _b.Rope(_q, n, heads, headDim, positions, _c.RopeFreqBase, _c.RopeStyle);
            _b.Rope(_k, n, kvHeads, headDim, positions, _c.RopeFreqBase, _c.RopeStyle);
            for (int i = 0; i < segs; i++)
            {
                var s = segments[i];
                var p = positions.Slice(s.Offset, s.Count);
                _b.StoreKv(s.Cache, l, views[i].K, views[i].V, s.Count, p);
                _b.Attention(s.Cache, l, views[i].Q, views[i].Att, s.Count, p, heads, kvHeads, headDim);
            }
            _b.MatMul(_att, n, _attnOut[l]);
            _b.Add(_x, _proj, n * dim);
            _b.RmsNorm(_x, lw.FfnNorm, _xb, n, dim, eps);
            _b.MatMul(_xb, n, _gateUp[l]);
            _b.SwiGlu(_gate, _up, _gate, n * ffn);
            _b.MatMul(_gate, n, _down[l]);
            _b.Add(_x, _proj, n * dim);
        }

        // Output head over the last row of each segment that wants logits, gathered into rows 0..m-1 of xb.
        int m = 0;
        foreach (var s in segments)
        {
            if (!s.WantLogits) continue;
            if (m == MaxLogitRows) throw new ArgumentException($"at most {MaxLogitRows} segments may want logits");
            _b.RmsNorm(_xRows[s.Offset + s.Count - 1], w.OutputNorm, _xbRows[m], 1, dim, eps);
            m++;
        }
        foreach (var v in views) { v.Q.Dispose(); v.K.Dispose(); v.V.Dispose(); v.Att.Dispose(); }
        if (m == 0) return 0;
        _b.MatMul(_xb, m, _head);                                                  // logits [m, vocab]
        _b.Read(_logits, logits[..(m * _c.VocabSize)]);
        return m;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var s in _xRows) s.Dispose();
        foreach (var s in _xbRows) s.Dispose();
        foreach (var buf in new[] { _x, _xb, _q, _k, _v, _att, _proj, _gate, _up, _logits }) buf.Dispose();
    }
}
