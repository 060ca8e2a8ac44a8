using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Tensors;

namespace Engine.Kernels.Testing;

/// <summary>
/// A minimal llama forward pass written against <see cref="IComputeBackend"/> in the decoder's op order
/// (embed; per layer: norm, fused q/k/v, rope + store + attention, o added into the residual, norm, fused
/// gate/up, swiglu, down added into the residual; final norm and output head on the last row). It lets the kernel tests and the GPU benchmark run
/// a decoder-shaped sequence of launches on synthetic weights without a model file. All buffers are
/// allocated once for up to <see cref="Shape.Context"/> rows.
/// </summary>
public sealed class TinyLlama : IDisposable
{
    /// <summary>Model shape; head dim = Dim / Heads.</summary>
    public readonly record struct Shape(int Layers, int Dim, int Heads, int KvHeads, int FeedForward, int Vocab, int Context)
    {
        public int HeadDim => Dim / Heads;
        public int KvDim => KvHeads * HeadDim;
    }

    /// <summary>Tensors of one layer, GGUF names in the comments.</summary>
    public sealed record Layer(
        TensorView AttnNorm,   // blk.N.attn_norm.weight [dim] f32
        TensorView Q,          // blk.N.attn_q.weight [dim, dim]
        TensorView K,          // blk.N.attn_k.weight [kvDim, dim]
        TensorView V,          // blk.N.attn_v.weight [kvDim, dim]
        TensorView O,          // blk.N.attn_output.weight [dim, dim]
        TensorView FfnNorm,    // blk.N.ffn_norm.weight [dim] f32
        TensorView Gate,       // blk.N.ffn_gate.weight [ff, dim]
        TensorView Up,         // blk.N.ffn_up.weight [ff, dim]
        TensorView Down);      // blk.N.ffn_down.weight [dim, ff]

    public sealed record Weights(TensorView Embedding, Layer[] Layers, TensorView OutputNorm, TensorView Output);

    /// <summary>Random weights (Q8_0 matrices, f32 norms) drawn from <paramref name="t"/>.</summary>
    public static Weights RandomWeights(HostTensors t, Shape s, bool fastQ8 = false)
    {
        TensorView M(string name, int rows, int cols) => fastQ8
            ? t.CreateRandomQ8_0(name, rows, cols)
            : t.Create(name, GgmlType.Q8_0, rows, cols, 1f / MathF.Sqrt(cols));
        TensorView Norm(string name) => t.Create(name, GgmlType.F32, 1, s.Dim, 1f);
        var layers = new Layer[s.Layers];
        for (int l = 0; l < s.Layers; l++)
            layers[l] = new Layer(Norm($"blk.{l}.attn_norm.weight"), M($"blk.{l}.attn_q.weight", s.Dim, s.Dim),
                M($"blk.{l}.attn_k.weight", s.KvDim, s.Dim), M($"blk.{l}.attn_v.weight", s.KvDim, s.Dim),
                M($"blk.{l}.attn_output.weight", s.Dim, s.Dim), Norm($"blk.{l}.ffn_norm.weight"),
                M($"blk.{l}.ffn_gate.weight", s.FeedForward, s.Dim), M($"blk.{l}.ffn_up.weight", s.FeedForward, s.Dim),
                M($"blk.{l}.ffn_down.weight", s.Dim, s.FeedForward));
        return new Weights(M("token_embd.weight", s.Vocab, s.Dim), layers, Norm("output_norm.weight"), M("output.weight", s.Vocab, s.Dim));
    }

    private const float Eps = 1e-5f;
    private const float RopeBase = 10000f;

    private readonly IComputeBackend _b;
    private readonly Shape _s;
    private readonly DeviceWeight _embedding, _outputNorm, _output;
    private readonly DeviceWeight[][] _layers; // per layer: the 9 tensors in Layer order
    private readonly KvCache _cache;
    private readonly DeviceBuffer _x, _xb, _xb2, _q, _k, _v, _att, _h1, _h2, _logits; // [context, width] f32 each
    private readonly float[] _hostLogits;
    private readonly int[] _positions;

    public TinyLlama(IComputeBackend backend, Shape shape, Weights w)
    {
        _b = backend;
        _s = shape;
        _embedding = backend.LoadWeight(w.Embedding);
        _outputNorm = backend.LoadWeight(w.OutputNorm);
        _output = backend.LoadWeight(w.Output);
        _layers = w.Layers.Select(l => new[] { l.AttnNorm, l.Q, l.K, l.V, l.O, l.FfnNorm, l.Gate, l.Up, l.Down }
            .Select(backend.LoadWeight).ToArray()).ToArray();
        _cache = backend.AllocateKvCache(shape.Layers, shape.Context, shape.KvDim);
        int c = shape.Context;
        _x = backend.Allocate(c * shape.Dim);
        _xb = backend.Allocate(c * shape.Dim);
        _xb2 = backend.Allocate(c * shape.Dim);
        _q = backend.Allocate(c * shape.Dim);
        _k = backend.Allocate(c * shape.KvDim);
        _v = backend.Allocate(c * shape.KvDim);
        _att = backend.Allocate(c * shape.Dim);
        _h1 = backend.Allocate(c * shape.FeedForward);
        _h2 = backend.Allocate(c * shape.FeedForward);
        _logits = backend.Allocate(shape.Vocab);
        _hostLogits = new float[shape.Vocab];
        _positions = new int[c];
    }

    /// <summary>
    /// True: the op sequence before fusion (Rope, Rope, StoreKv, Attention, MatMul + Add); false (default): the
    /// fused ops the decoder uses (RopeStoreKvAttention, MatMulAdd). Tests compare the two.
    /// </summary>
    public bool Unfused { get; set; }

    /// <summary>Runs <paramref name="tokens"/> at positions start.. and returns the last row's logits (a shared array).</summary>
    public float[] Forward(ReadOnlySpan<int> tokens, int start)
    {
        Enqueue(tokens, start);
        _b.Read(_logits, _hostLogits);
        return _hostLogits;
    }

    /// <summary>Reads the logits of the last enqueued step (a shared array).</summary>
    public float[] ReadLogits()
    {
        _b.Read(_logits, _hostLogits);
        return _hostLogits;
    }

    /// <summary>Enqueues the forward pass without reading anything back.</summary>
    public void Enqueue(ReadOnlySpan<int> tokens, int start)
    {
        var s = _s;
        int n = tokens.Length;
        for (int r = 0; r < n; r++) _positions[r] = start + r;
        ReadOnlySpan<int> pos = _positions.AsSpan(0, n);
        _b.Embed(_embedding, tokens, _x);
        for (int l = 0; l < s.Layers; l++)
        {
            var w = _layers[l];
            _b.RmsNorm(_x, w[0], _xb, n, s.Dim, Eps);
            _b.MatMul(_xb, n, [new(w[1], _q), new(w[2], _k), new(w[3], _v)]);
            if (Unfused)
            {
                _b.Rope(_q, n, s.Heads, s.HeadDim, pos, RopeBase, RopeStyle.Normal);
                _b.Rope(_k, n, s.KvHeads, s.HeadDim, pos, RopeBase, RopeStyle.Normal);
                _b.StoreKv(_cache, l, _k, _v, n, pos);
                _b.Attention(_cache, l, _q, _att, n, pos, s.Heads, s.KvHeads, s.HeadDim);
                _b.MatMul(_att, n, [new(w[4], _xb2)]);
                _b.Add(_x, _xb2, n * s.Dim);
            }
            else
            {
                _b.RopeStoreKvAttention(_cache, l, _q, _k, _v, _att, n, pos, s.Heads, s.KvHeads, s.HeadDim, RopeBase, RopeStyle.Normal);
                _b.MatMulAdd(_att, n, new(w[4], _xb2), _x);
            }
            _b.RmsNorm(_x, w[5], _xb, n, s.Dim, Eps);
            _b.MatMul(_xb, n, [new(w[6], _h1), new(w[7], _h2)]);
            _b.SwiGlu(_h1, _h2, _h1, n * s.FeedForward);
            if (Unfused)
            {
                _b.MatMul(_h1, n, [new(w[8], _xb2)]);
                _b.Add(_x, _xb2, n * s.Dim);
            }
            else
            {
                _b.MatMulAdd(_h1, n, new(w[8], _xb2), _x);
            }
        }
        var last = _x.Slice((n - 1) * s.Dim, s.Dim);
        var lastNorm = _xb.Slice(0, s.Dim);
        _b.RmsNorm(last, _outputNorm, lastNorm, 1, s.Dim, Eps);
        _b.MatMul(lastNorm, 1, [new(_output, _logits)]);
    }

    /// <summary>Bytes of weights one decode step reads (all matrices + the embedding row).</summary>
    public static long WeightBytesPerToken(Shape s)
    {
        long q8(long rows, long cols) => rows * cols / 32 * 34;
        long layer = q8(s.Dim, s.Dim) * 2 + q8(s.KvDim, s.Dim) * 2 + q8(s.FeedForward, s.Dim) * 3 + 2L * s.Dim * 4;
        return layer * s.Layers + q8(s.Vocab, s.Dim) + s.Dim * 4L + s.Dim / 32 * 34;
    }

    public void Dispose()
    {
        foreach (var d in new[] { _x, _xb, _xb2, _q, _k, _v, _att, _h1, _h2, _logits }) d.Dispose();
        _cache.Dispose();
        _embedding.Dispose();
        _outputNorm.Dispose();
        _output.Dispose();
        foreach (var l in _layers) foreach (var w in l) w.Dispose();
    }
}
