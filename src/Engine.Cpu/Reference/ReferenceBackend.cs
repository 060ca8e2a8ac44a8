using System.Runtime.InteropServices;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Core.Tensors;

namespace Engine.Cpu.Reference;

/// <summary>
/// The scalar reference for every op of <see cref="IComputeBackend"/>: plain loops, one thread,
/// written to be obviously right rather than fast. Every optimized backend is tested against it.
/// Q8_0 products follow llama.cpp exactly: activations quantized with <see cref="Q8_0.QuantizeRow(ReadOnlySpan{float}, Span{BlockQ8_0})"/>,
/// int32 sum of int8 products per block, times <c>d_w * d_x</c>, summed in f32 block by block.
/// </summary>
public sealed unsafe partial class ReferenceBackend : IComputeBackend
{
    public string Name => "reference";

    public DeviceWeight LoadWeight(TensorView tensor) => new HostWeight(tensor);

    public DeviceBuffer Allocate(int length) => new HostBuffer(new float[length], 0, length);

    public KvCache AllocateKvCache(int layers, int contextLength, int kvDim) => new HostKvCache(layers, contextLength, kvDim);

    public void Write(DeviceBuffer dst, ReadOnlySpan<float> src) => src.CopyTo(Span(dst));

    public void Read(DeviceBuffer src, Span<float> dst) => Span(src)[..dst.Length].CopyTo(dst);

    public void Embed(DeviceWeight table, ReadOnlySpan<int> tokens, DeviceBuffer dst)
    {
        var t = W(table);
        var y = Span(dst);
        for (int r = 0; r < tokens.Length; r++)
        {
            if ((uint)tokens[r] >= (uint)t.Rows) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[r]} outside vocabulary of {t.Rows}");
            RowDecoding.ToFloat(t.View, tokens[r], y.Slice(r * t.Cols, t.Cols));
        }
    }

    public void RmsNorm(DeviceBuffer x, DeviceWeight weight, DeviceBuffer dst, int n, int dim, float eps)
    {
        var w = new float[dim];
        RowDecoding.ToFloat(W(weight).View, 0, w);
        var xs = Span(x);
        var ys = Span(dst);
        for (int r = 0; r < n; r++)
        {
            var row = xs.Slice(r * dim, dim);
            double ss = 0; // ggml sums squares in ggml_float (double) for rms_norm
            for (int i = 0; i < dim; i++) ss += row[i] * row[i];
            float scale = 1f / MathF.Sqrt((float)(ss / dim) + eps);
            var outRow = ys.Slice(r * dim, dim);
            for (int i = 0; i < dim; i++) outRow[i] = row[i] * scale * w[i];
        }
    }

    public void MatMul(DeviceBuffer x, int n, ReadOnlySpan<MatMulTarget> targets)
    {
        var xs = Span(x);
        foreach (var target in targets)
        {
            var w = W(target.Weight);
            int cols = w.Cols;
            var y = Span(target.Output);
            var row = new float[cols];
            BlockQ8_0[]? xq = w.View.Type == GgmlType.Q8_0 ? new BlockQ8_0[cols / BlockQ8_0.Size] : null;
            for (int r = 0; r < n; r++)
            {
                var xr = xs.Slice(r * cols, cols);
                if (xq is not null)
                {
                    Q8_0.QuantizeRow(xr, xq);
                    for (int o = 0; o < w.Rows; o++)
                        y[r * w.Rows + o] = DotQ8_0(MemoryMarshal.Cast<byte, BlockQ8_0>(w.View.Row(o)), xq);
                }
                else
                {
                    for (int o = 0; o < w.Rows; o++)
                    {
                        RowDecoding.ToFloat(w.View, o, row);
                        float sum = 0;
                        for (int i = 0; i < cols; i++) sum += row[i] * xr[i];
                        y[r * w.Rows + o] = sum;
                    }
                }
            }
        }
    }

    /// <summary>llama.cpp's ggml_vec_dot_q8_0_q8_0, scalar: per block an exact int32 dot, scaled by d_w·d_x.</summary>
    public static float DotQ8_0(ReadOnlySpan<BlockQ8_0> w, ReadOnlySpan<BlockQ8_0> x)
    {
        float sum = 0;
        for (int b = 0; b < x.Length; b++)
        {
            int acc = 0;
            for (int j = 0; j < BlockQ8_0.Size; j++) acc += w[b].Qs[j] * x[b].Qs[j];
            sum += acc * ((float)w[b].D * (float)x[b].D);
        }
        return sum;
    }

    public void AddBias(DeviceBuffer y, DeviceWeight bias, int n)
    {
        var b = new float[bias.Cols];
        RowDecoding.ToFloat(W(bias).View, 0, b);
        var ys = Span(y);
        for (int r = 0; r < n; r++)
            for (int i = 0; i < b.Length; i++) ys[r * b.Length + i] += b[i];
    }

    public void Rope(DeviceBuffer x, int n, int heads, int headDim, ReadOnlySpan<int> positions, float freqBase, RopeStyle style)
    {
        var xs = Span(x);
        int half = headDim / 2;
        for (int r = 0; r < n; r++)
        {
            int pos = positions[r];
            for (int h = 0; h < heads; h++)
            {
                var v = xs.Slice((r * heads + h) * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    // theta = pos * base^(-2i/d), as ggml_rope (rope_yarn with ext_factor 0, freq_scale 1).
                    float theta = pos * MathF.Pow(freqBase, -2f * i / headDim);
                    float c = MathF.Cos(theta), s = MathF.Sin(theta);
                    int a = style == RopeStyle.Normal ? 2 * i : i;
                    int b = style == RopeStyle.Normal ? 2 * i + 1 : i + half;
                    float x0 = v[a], x1 = v[b];
                    v[a] = x0 * c - x1 * s;
                    v[b] = x0 * s + x1 * c;
                }
            }
        }
    }

    public void StoreKv(KvCache cache, int layer, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions)
    {
        var c = (HostKvCache)cache;
        int d = c.KvDim;
        for (int r = 0; r < n; r++)
        {
            Span(k).Slice(r * d, d).CopyTo(c.Keys.AsSpan(c.Offset(layer, positions[r]), d));
            Span(v).Slice(r * d, d).CopyTo(c.Values.AsSpan(c.Offset(layer, positions[r]), d));
        }
    }

    public void Attention(KvCache cache, int layer, DeviceBuffer q, DeviceBuffer output, int n, ReadOnlySpan<int> positions, int heads, int kvHeads, int headDim)
    {
        var c = (HostKvCache)cache;
        var qs = Span(q);
        var os = Span(output);
        int group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int r = 0; r < n; r++)
        {
            int len = positions[r] + 1;
            var scores = new float[len];
            for (int h = 0; h < heads; h++)
            {
                var qh = qs.Slice((r * heads + h) * headDim, headDim);
                int kvh = h / group;
                float max = float.NegativeInfinity;
                for (int t = 0; t < len; t++)
                {
                    var kt = c.Keys.AsSpan(c.Offset(layer, t) + kvh * headDim, headDim);
                    float s = 0;
                    for (int i = 0; i < headDim; i++) s += qh[i] * kt[i];
                    scores[t] = s * scale;
                    max = MathF.Max(max, scores[t]);
                }
                float sum = 0;
                for (int t = 0; t < len; t++) { scores[t] = MathF.Exp(scores[t] - max); sum += scores[t]; }
                var oh = os.Slice((r * heads + h) * headDim, headDim);
                oh.Clear();
                for (int t = 0; t < len; t++)
                {
                    float p = scores[t] / sum;
                    var vt = c.Values.AsSpan(c.Offset(layer, t) + kvh * headDim, headDim);
                    for (int i = 0; i < headDim; i++) oh[i] += p * vt[i];
                }
            }
        }
    }

    public void SwiGlu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer dst, int count)
    {
        var g = Span(gate);
        var u = Span(up);
        var d = Span(dst);
        for (int i = 0; i < count; i++) d[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    public void Add(DeviceBuffer x, DeviceBuffer y, int count)
    {
        var xs = Span(x);
        var ys = Span(y);
        for (int i = 0; i < count; i++) xs[i] += ys[i];
    }

    public void Dispose() { }

    private static Span<float> Span(DeviceBuffer b) => ((HostBuffer)b).Span;

    private static HostWeight W(DeviceWeight w) => (HostWeight)w;

    /// <summary>A managed f32 array slice.</summary>
    private sealed class HostBuffer(float[] array, int offset, int length) : DeviceBuffer(length)
    {
        public Span<float> Span => array.AsSpan(offset, Length);
        public override DeviceBuffer Slice(int start, int count)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)start + (uint)count, (uint)Length);
            return new HostBuffer(array, offset + start, count);
        }
        public override void Dispose() { }
    }

    /// <summary>Wraps the mapped tensor; no copy.</summary>
    private sealed class HostWeight(TensorView view) : DeviceWeight(view.Name, view.Type, view.Rows, view.Cols)
    {
        public TensorView View { get; } = view;
        public override void Dispose() { }
    }

    /// <summary>Keys and values as [layers, contextLength, kvDim] f32.</summary>
    private sealed class HostKvCache(int layers, int contextLength, int kvDim) : KvCache(layers, contextLength, kvDim)
    {
        public float[] Keys { get; } = new float[(long)layers * contextLength * kvDim];
        public float[] Values { get; } = new float[(long)layers * contextLength * kvDim];
        public int Offset(int layer, int pos)
        {
            if ((uint)pos >= (uint)ContextLength) throw new ArgumentOutOfRangeException(nameof(pos), $"position {pos} outside the context of {ContextLength}");
            return (layer * ContextLength + pos) * KvDim;
        }
        public override void Dispose() { }
    }
}
