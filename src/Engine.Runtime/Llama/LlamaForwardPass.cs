using Engine.Core.Backend;

namespace Engine.Runtime.Llama;

/// <summary>
/// The attention step of one layer, the only part of the layer loop that differs between callers:
/// rotate q/k, store the rows' k/v in a KV cache and attend q against it, writing <see cref="LlamaForwardPass.Att"/>.
/// A ref struct may implement it so that a step can carry spans without allocating.
/// </summary>
internal interface ILlamaAttentionStep
{
    /// <summary>
    /// Runs layer <paramref name="layer"/>'s RoPE on <see cref="LlamaForwardPass.Q"/>/<see cref="LlamaForwardPass.K"/>,
    /// KV store and attention for the step's rows at <paramref name="positions"/> (one
    /// <see cref="IComputeBackend.RopeStoreKvAttention"/> per KV cache).
    /// </summary>
    void Attend(LlamaForwardPass pass, int layer, ReadOnlySpan<int> positions);
}

/// <summary>
/// Owner of the activation buffers, fused <see cref="MatMulTarget"/> arrays and layer loop shared by
/// <see cref="LlamaDecoder"/> (one sequence) and the batched scheduler's decoder (many sequences):
/// per layer RMSNorm → fused q/k/v → (bias) → [attention step: RoPE, KV store, attention] → output projection
/// added into the residual, RMSNorm → fused gate/up → SwiGLU → down projection added into the residual; then the final RMSNorm and output head
/// over the rows the caller picks. Everything is allocated here, sized for <see cref="MaxRows"/> rows:
/// running a step allocates nothing. Not thread-safe.
/// </summary>
internal sealed class LlamaForwardPass : IDisposable
{
    private readonly LlamaModel _model;
    private readonly LlamaConfig _c;
    private readonly IComputeBackend _b;

    // Activations, row-major [maxRows, width] f32 on the backend.
    private readonly DeviceBuffer _x;        // [maxRows, dim] residual stream
    private readonly DeviceBuffer _xb;       // [maxRows, dim] normed input of a sub-layer
    private readonly DeviceBuffer _proj;     // [maxRows, dim] attn_output / ffn_down result
    private readonly DeviceBuffer _gate;     // [maxRows, ffn] gate, then silu(gate) * up
    private readonly DeviceBuffer _up;       // [maxRows, ffn]
    private readonly DeviceBuffer[] _xRows;  // _xRows[r] = row r of _x, [dim]
    private readonly DeviceBuffer[] _xbRows; // _xbRows[r] = row r of _xb, [dim]

    // Fused matrix products, one array per call site so no span is built per step.
    private readonly MatMulTarget[][] _qkv;      // [layers][3]: q, k, v
    private readonly MatMulTarget[] _attnOut;    // [layers]: Wo → proj (proj only used by backends without a fused MatMulAdd)
    private readonly MatMulTarget[][] _gateUp;   // [layers][2]
    private readonly MatMulTarget[] _down;       // [layers]: Wdown → proj
    private readonly MatMulTarget[] _head;       // [1]: rows of _xb → Logits

    private readonly int[] _positions;           // [maxRows] positions of the rows of a step
    private bool _disposed;

    /// <summary>Allocates buffers for <paramref name="maxRows"/> rows per step and <paramref name="logitRows"/> rows of logits.</summary>
    public LlamaForwardPass(LlamaModel model, int maxRows, int logitRows)
    {
        _model = model;
        _c = model.Config;
        _b = model.Backend;
        MaxRows = maxRows;
        int dim = _c.Dim, kv = _c.KvDim, ffn = _c.FfnDim, nb = maxRows;
        _x = _b.Allocate(nb * dim);
        _xb = _b.Allocate(nb * dim);
        Q = _b.Allocate(nb * dim);
        K = _b.Allocate(nb * kv);
        V = _b.Allocate(nb * kv);
        Att = _b.Allocate(nb * dim);
        _proj = _b.Allocate(nb * dim);
        _gate = _b.Allocate(nb * ffn);
        _up = _b.Allocate(nb * ffn);
        Logits = _b.Allocate(logitRows * _c.VocabSize);
        _xRows = new DeviceBuffer[nb];
        _xbRows = new DeviceBuffer[nb];
        for (int r = 0; r < nb; r++)
        {
            _xRows[r] = _x.Slice(r * dim, dim);
            _xbRows[r] = _xb.Slice(r * dim, dim);
        }

        var w = model.Weights;
        _qkv = new MatMulTarget[_c.Layers][];
        _attnOut = new MatMulTarget[_c.Layers];
        _gateUp = new MatMulTarget[_c.Layers][];
        _down = new MatMulTarget[_c.Layers];
        for (int l = 0; l < _c.Layers; l++)
        {
            var lw = w.Layers[l];
            _qkv[l] = [new(lw.Q, Q), new(lw.K, K), new(lw.V, V)];
            _attnOut[l] = new(lw.AttnOutput, _proj);
            _gateUp[l] = [new(lw.Gate, _gate), new(lw.Up, _up)];
            _down[l] = new(lw.Down, _proj);
        }
        _head = [new(w.Output, Logits)];
        _positions = new int[nb];
    }

    /// <summary>Most rows in one step.</summary>
    public int MaxRows { get; }

    /// <summary>The model's hyperparameters.</summary>
    public LlamaConfig Config => _c;

    /// <summary>The backend every op runs on.</summary>
    public IComputeBackend Backend => _b;

    /// <summary>[maxRows, dim] queries after RoPE, input of the attention step.</summary>
    public DeviceBuffer Q { get; }

    /// <summary>[maxRows, kvDim] keys after RoPE, input of the attention step.</summary>
    public DeviceBuffer K { get; }

    /// <summary>[maxRows, kvDim] values, input of the attention step.</summary>
    public DeviceBuffer V { get; }

    /// <summary>[maxRows, dim] attention output (heads concatenated), written by the attention step.</summary>
    public DeviceBuffer Att { get; }

    /// <summary>[logitRows, vocab] output of <see cref="Head"/>.</summary>
    public DeviceBuffer Logits { get; }

    /// <summary>Positions of the rows of the next step; the caller fills the first n before <see cref="Run"/>.</summary>
    public Span<int> Positions => _positions;

    /// <summary>
    /// Embeds <paramref name="tokens"/> <c>[n]</c> (at <see cref="Positions"/>[..n]) and runs every layer over
    /// them, calling <paramref name="attention"/> once per layer between the q/k/v products (and biases) and the
    /// output projection: it applies RoPE to <see cref="Q"/> and <see cref="K"/>, stores k/v and attends (see
    /// <see cref="IComputeBackend.RopeStoreKvAttention"/>). The output and down projections are added into the
    /// residual stream by <see cref="IComputeBackend.MatMulAdd"/>.
    /// </summary>
    public void Run<TAttention>(ReadOnlySpan<int> tokens, ref TAttention attention)
        where TAttention : ILlamaAttentionStep, allows ref struct
    {
        int n = tokens.Length;
        int dim = _c.Dim, ffn = _c.FfnDim;
        float eps = _c.RmsEps;
        ReadOnlySpan<int> positions = _positions.AsSpan(0, n);

        var w = _model.Weights;
        _b.Embed(w.TokenEmbedding, tokens, _x);                                  // x [n, dim]
        for (int l = 0; l < _c.Layers; l++)
        {
            var lw = w.Layers[l];

            // Attention block.
            _b.RmsNorm(_x, lw.AttnNorm, _xb, n, dim, eps);                        // xb [n, dim]
            _b.MatMul(_xb, n, _qkv[l]);                                           // q [n, dim], k, v [n, kvDim]: one read of Wq, Wk, Wv for all rows
            if (lw.QBias is not null) _b.AddBias(Q, lw.QBias, n);
            if (lw.KBias is not null) _b.AddBias(K, lw.KBias, n);
            if (lw.VBias is not null) _b.AddBias(V, lw.VBias, n);
            attention.Attend(this, l, positions);                                 // RoPE, KV store, attention: att [n, dim]
            _b.MatMulAdd(Att, n, _attnOut[l], _x);                                // x += Wo · att (proj: scratch of the unfused form)

            // Feed-forward block.
            _b.RmsNorm(_x, lw.FfnNorm, _xb, n, dim, eps);
            _b.MatMul(_xb, n, _gateUp[l]);                                        // gate, up [n, ffn]
            _b.SwiGlu(_gate, _up, _gate, n * ffn);
            _b.MatMulAdd(_gate, n, _down[l], _x);                                 // x += Wdown · h
        }
    }

    /// <summary>Final RMSNorm of the first <paramref name="n"/> rows of the residual stream into rows 0..n-1 of the head's input.</summary>
    public void NormAllForHead(int n) => _b.RmsNorm(_x, _model.Weights.OutputNorm, _xb, n, _c.Dim, _c.RmsEps);

    /// <summary>Final RMSNorm of residual row <paramref name="row"/> into head input row <paramref name="headRow"/>.</summary>
    public void NormRowForHead(int row, int headRow) =>
        _b.RmsNorm(_xRows[row], _model.Weights.OutputNorm, _xbRows[headRow], 1, _c.Dim, _c.RmsEps);

    /// <summary>Output head over head input rows 0..m-1: <see cref="Logits"/> <c>[m, vocab]</c>.</summary>
    public void Head(int m) => _b.MatMul(m == 1 ? _xbRows[0] : _xb, m, _head);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _xRows) s.Dispose();
        foreach (var s in _xbRows) s.Dispose();
        foreach (var buf in new[] { _x, _xb, Q, K, V, Att, _proj, _gate, _up, Logits }) buf.Dispose();
    }
}
