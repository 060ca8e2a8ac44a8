using System.Diagnostics.CodeAnalysis;
using Engine.Core.Backend;

namespace Engine.Runtime.Llama;

/// <summary>Sizes of a <see cref="LlamaDecoder"/>'s buffers, fixed at construction.</summary>
public sealed record LlamaDecoderOptions
{
    /// <summary>llama.cpp's default n_ubatch is 512; 64 keeps the activations of large models small while prefill still batches.</summary>
    public const int DefaultMaxBatch = 64;

    /// <summary>Positions of the KV cache; 0 means the model's declared <c>context_length</c>.</summary>
    public int ContextLength { get; init; }

    /// <summary>Most tokens one forward step processes together; longer inputs run in chunks of this size.</summary>
    public int MaxBatch { get; init; } = DefaultMaxBatch;

    /// <summary>
    /// When true the output head runs on every row and <see cref="LlamaDecoder.Forward(ReadOnlySpan{int}, Span{float})"/>
    /// can return the logits of every token (parity tests); otherwise only the last row's logits are computed.
    /// </summary>
    public bool AllLogits { get; init; }
}

/// <summary>
/// One sequence's forward pass over a <see cref="LlamaModel"/>, written only against
/// <see cref="IComputeBackend"/>: token embedding, per layer RMSNorm → fused q/k/v → (bias) → RoPE →
/// KV store → grouped-query attention → output projection → residual, RMSNorm → fused gate/up →
/// SwiGLU → down projection → residual; then the final RMSNorm and the output head.
/// <para>
/// Every device buffer, slice and <see cref="MatMulTarget"/> array is allocated in the constructor,
/// sized for <see cref="LlamaDecoderOptions.MaxBatch"/> rows: a forward step allocates nothing.
/// Not thread-safe: one owner drives it.
/// </para>
/// </summary>
public sealed class LlamaDecoder : IDisposable
{
    private readonly LlamaModel _model;
    private readonly LlamaConfig _c;
    private readonly IComputeBackend _b;
    private readonly KvCache _cache;
    private readonly int _maxBatch;
    private readonly bool _allLogits;

    // Activations, row-major [maxBatch, width] f32 on the backend.
    private readonly DeviceBuffer _x;        // [maxBatch, dim] residual stream
    private readonly DeviceBuffer _xb;       // [maxBatch, dim] normed input of a sub-layer
    private readonly DeviceBuffer _q;        // [maxBatch, dim]
    private readonly DeviceBuffer _k;        // [maxBatch, kvDim]
    private readonly DeviceBuffer _v;        // [maxBatch, kvDim]
    private readonly DeviceBuffer _att;      // [maxBatch, dim] attention output (heads concatenated)
    private readonly DeviceBuffer _proj;     // [maxBatch, dim] attn_output / ffn_down result
    private readonly DeviceBuffer _gate;     // [maxBatch, ffn] gate, then silu(gate) * up
    private readonly DeviceBuffer _up;       // [maxBatch, ffn]
    private readonly DeviceBuffer _logits;   // [maxBatch, vocab] with AllLogits, else [1, vocab]
    private readonly DeviceBuffer[] _xRows;  // _xRows[r] = row r of _x, [dim]
    private readonly DeviceBuffer _xbRow0;   // row 0 of _xb, [dim]

    // Fused matrix products, one array per call site so no span is built per step.
    private readonly MatMulTarget[][] _qkv;      // [layers][3]: q, k, v
    private readonly MatMulTarget[][] _attnOut;  // [layers][1]
    private readonly MatMulTarget[][] _gateUp;   // [layers][2]
    private readonly MatMulTarget[][] _down;     // [layers][1]
    private readonly MatMulTarget[] _headAll;    // [1]: all rows of _xb → _logits
    private readonly MatMulTarget[] _headLast;   // [1]: _xbRow0 → _logits

    private readonly int[] _positions;           // [maxBatch] positions of the rows of a step
    private readonly float[] _hostLogits;        // [vocab] logits of the last token, on the host
    private readonly int[] _one = new int[1];    // the token of a decode step
    private bool _disposed;

    /// <summary>Creates a decoder with its own KV cache; see <see cref="LlamaDecoderOptions"/>.</summary>
    public LlamaDecoder(LlamaModel model, LlamaDecoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        _model = model;
        _c = model.Config;
        _b = model.Backend;
        int ctx = options.ContextLength == 0 ? _c.ContextLength : options.ContextLength;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ctx, nameof(options.ContextLength));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxBatch, nameof(options.MaxBatch));
        ContextLength = ctx;
        _maxBatch = Math.Min(options.MaxBatch, ctx);
        _allLogits = options.AllLogits;

        int dim = _c.Dim, kv = _c.KvDim, ffn = _c.FfnDim, vocab = _c.VocabSize, nb = _maxBatch;
        _cache = _b.AllocateKvCache(_c.Layers, ctx, kv);
        _x = _b.Allocate(nb * dim);
        _xb = _b.Allocate(nb * dim);
        _q = _b.Allocate(nb * dim);
        _k = _b.Allocate(nb * kv);
        _v = _b.Allocate(nb * kv);
        _att = _b.Allocate(nb * dim);
        _proj = _b.Allocate(nb * dim);
        _gate = _b.Allocate(nb * ffn);
        _up = _b.Allocate(nb * ffn);
        _logits = _b.Allocate((_allLogits ? nb : 1) * vocab);
        _xRows = new DeviceBuffer[nb];
        for (int r = 0; r < nb; r++) _xRows[r] = _x.Slice(r * dim, dim);
        _xbRow0 = _xb.Slice(0, dim);

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
        _headAll = [new(w.Output, _logits)];
        _headLast = [new(w.Output, _logits)];

        _positions = new int[nb];
        _hostLogits = new float[vocab];
    }

    /// <summary>The model this decoder runs.</summary>
    public LlamaModel Model => _model;

    /// <summary>Positions in the KV cache.</summary>
    public int ContextLength { get; }

    /// <summary>Most tokens per forward step.</summary>
    public int MaxBatch => _maxBatch;

    /// <summary>Number of positions filled: the next token goes at this position.</summary>
    public int Position { get; private set; }

    /// <summary>Vocabulary size (length of a logits row).</summary>
    public int VocabSize => _c.VocabSize;

    /// <summary>Logits of the last token of the latest forward call (a view of an internal buffer, overwritten by the next call).</summary>
    public ReadOnlySpan<float> LastLogits => _hostLogits;

    /// <summary>Forgets the sequence: the next token goes at position 0.</summary>
    public void Reset() => Position = 0;

    /// <summary>Truncates the sequence to its first <paramref name="position"/> tokens (cache entries past it are overwritten later).</summary>
    public void Rewind(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(position, Position);
        Position = position;
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> at positions <see cref="Position"/>.. (in chunks of
    /// <see cref="MaxBatch"/>) and returns the logits of the last one, <c>[vocab]</c> f32.
    /// The span views an internal buffer that the next call overwrites.
    /// </summary>
    public ReadOnlySpan<float> Forward(scoped ReadOnlySpan<int> tokens)
    {
        CheckAppend(tokens.Length);
        for (int start = 0; start < tokens.Length; start += _maxBatch)
        {
            int n = Math.Min(_maxBatch, tokens.Length - start);
            bool last = start + n == tokens.Length;
            Step(tokens.Slice(start, n), headRows: last ? HeadRows.Last : HeadRows.None);
        }
        _b.Read(_logits, _hostLogits);
        return _hostLogits;
    }

    /// <summary>Appends one token (a decode step) and returns its logits, as <see cref="Forward(ReadOnlySpan{int})"/>.</summary>
    public ReadOnlySpan<float> Forward(int token)
    {
        _one[0] = token;
        return Forward(_one);
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> and writes the logits of every one of them to
    /// <paramref name="logits"/> <c>[n, vocab]</c> f32. Needs <see cref="LlamaDecoderOptions.AllLogits"/>.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, Span<float> logits)
    {
        if (!_allLogits) throw new InvalidOperationException("this decoder computes only the last token's logits; create it with AllLogits = true");
        int vocab = _c.VocabSize;
        ArgumentOutOfRangeException.ThrowIfLessThan(logits.Length, tokens.Length * vocab, nameof(logits));
        CheckAppend(tokens.Length);
        for (int start = 0; start < tokens.Length; start += _maxBatch)
        {
            int n = Math.Min(_maxBatch, tokens.Length - start);
            Step(tokens.Slice(start, n), HeadRows.All);
            _b.Read(_logits, logits.Slice(start * vocab, n * vocab));
        }
        logits.Slice((tokens.Length - 1) * vocab, vocab).CopyTo(_hostLogits);
    }

    private enum HeadRows { None, Last, All }

    private void CheckAppend(int n)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (n == 0) throw new ArgumentException("no tokens to process", "tokens");
        if (Position + n > ContextLength) ThrowContextFull(n);
    }

    [DoesNotReturn]
    private void ThrowContextFull(int n) =>
        throw new ContextFullException($"{n} more tokens at position {Position} exceed the context of {ContextLength} positions");

    /// <summary>One forward step over n ≤ MaxBatch tokens at positions Position..Position+n-1.</summary>
    private void Step(ReadOnlySpan<int> tokens, HeadRows headRows)
    {
        int n = tokens.Length;
        int dim = _c.Dim, ffn = _c.FfnDim, heads = _c.Heads, kvHeads = _c.KvHeads, headDim = _c.HeadDim;
        float eps = _c.RmsEps;
        var positions = _positions.AsSpan(0, n);
        for (int r = 0; r < n; r++) positions[r] = Position + r;

        var w = _model.Weights;
        _b.Embed(w.TokenEmbedding, tokens, _x);                                  // x [n, dim]
        for (int l = 0; l < _c.Layers; l++)
        {
            var lw = w.Layers[l];

            // Attention block.
            _b.RmsNorm(_x, lw.AttnNorm, _xb, n, dim, eps);                        // xb [n, dim]
            _b.MatMul(_xb, n, _qkv[l]);                                           // q [n, dim], k, v [n, kvDim]
            if (lw.QBias is not null) _b.AddBias(_q, lw.QBias, n);
            if (lw.KBias is not null) _b.AddBias(_k, lw.KBias, n);
            if (lw.VBias is not null) _b.AddBias(_v, lw.VBias, n);
            _b.Rope(_q, n, heads, headDim, positions, _c.RopeFreqBase, _c.RopeStyle);
            _b.Rope(_k, n, kvHeads, headDim, positions, _c.RopeFreqBase, _c.RopeStyle);
            _b.StoreKv(_cache, l, _k, _v, n, positions);
            _b.Attention(_cache, l, _q, _att, n, positions, heads, kvHeads, headDim); // att [n, dim]
            _b.MatMul(_att, n, _attnOut[l]);                                      // proj [n, dim]
            _b.Add(_x, _proj, n * dim);

            // Feed-forward block.
            _b.RmsNorm(_x, lw.FfnNorm, _xb, n, dim, eps);
            _b.MatMul(_xb, n, _gateUp[l]);                                        // gate, up [n, ffn]
            _b.SwiGlu(_gate, _up, _gate, n * ffn);
            _b.MatMul(_gate, n, _down[l]);                                        // proj [n, dim]
            _b.Add(_x, _proj, n * dim);
        }
        Position += n;

        switch (headRows)
        {
            case HeadRows.All:
                _b.RmsNorm(_x, w.OutputNorm, _xb, n, dim, eps);
                _b.MatMul(_xb, n, _headAll);                                      // logits [n, vocab]
                break;
            case HeadRows.Last:
                // Only the last row's logits are needed to sample the next token.
                _b.RmsNorm(_xRows[n - 1], w.OutputNorm, _xbRow0, 1, dim, eps);
                _b.MatMul(_xbRow0, 1, _headLast);                                 // logits [1, vocab]
                break;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _xRows) s.Dispose();
        _xbRow0.Dispose();
        foreach (var buf in new[] { _x, _xb, _q, _k, _v, _att, _proj, _gate, _up, _logits }) buf.Dispose();
        _cache.Dispose();
    }
}

/// <summary>More tokens than the KV cache has positions left.</summary>
public sealed class ContextFullException(string message) : Exception(message);
