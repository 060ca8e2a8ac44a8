using System.Runtime.Intrinsics;
using Engine.Core.Backend;

namespace Engine.Cpu;

// Elementwise and row ops. They are memory-light next to the products (a few KB per token), so they run
// on the calling thread, vectorized; the scalar path keeps the reference's loops.
public sealed unsafe partial class CpuBackend
{
    private readonly NativeScratch<float> _rope = new(); // [3, headDim]: inverse frequencies, cos, sin (expanded)
    private int _ropeHeadDim = -1;
    private float _ropeBase = float.NaN;

    public void RmsNorm(DeviceBuffer x, DeviceWeight weight, DeviceBuffer dst, int n, int dim, float eps)
    {
        var xb = Buf(x);
        var yb = Buf(dst);
        var wt = Wt(weight);
        if (wt.Cols < dim) throw new ArgumentException($"norm weight '{wt.Name}' has {wt.Cols} elements, rows have {dim}", nameof(weight));
        Need(xb, (long)n * dim, nameof(x));
        Need(yb, (long)n * dim, nameof(dst));
        float* w = wt.Vector;
        bool vector = Path != CpuKernelPath.Scalar;
        for (int r = 0; r < n; r++)
        {
            float* row = xb.Ptr + (long)r * dim;
            float* outRow = yb.Ptr + (long)r * dim;
            // ggml sums the squares in ggml_float (double); each square is an f32 product, as in the reference.
            double ss = 0;
            int i = 0;
            if (vector)
            {
                var a0 = Vector256<double>.Zero;
                var a1 = Vector256<double>.Zero;
                for (; i + 8 <= dim; i += 8)
                {
                    var v = Vector256.Load(row + i);
                    var (lo, hi) = Vector256.Widen(v * v);
                    a0 += lo;
                    a1 += hi;
                }
                ss = Vector256.Sum(a0 + a1);
            }
            for (; i < dim; i++) ss += row[i] * row[i];
            float scale = 1f / MathF.Sqrt((float)(ss / dim) + eps);
            i = 0;
            if (vector)
            {
                var vs = Vector256.Create(scale);
                for (; i + 8 <= dim; i += 8)
                    (Vector256.Load(row + i) * vs * Vector256.Load(w + i)).Store(outRow + i);
            }
            for (; i < dim; i++) outRow[i] = row[i] * scale * w[i];
        }
    }

    public void AddBias(DeviceBuffer y, DeviceWeight bias, int n)
    {
        var yb = Buf(y);
        var bw = Wt(bias);
        int d = bw.Cols;
        Need(yb, (long)n * d, nameof(y));
        float* b = bw.Vector;
        for (int r = 0; r < n; r++) AddInPlace(yb.Ptr + (long)r * d, b, d);
    }

    public void Add(DeviceBuffer x, DeviceBuffer y, int count)
    {
        var xb = Buf(x);
        var yb = Buf(y);
        Need(xb, count, nameof(x));
        Need(yb, count, nameof(y));
        AddInPlace(xb.Ptr, yb.Ptr, count);
    }

    private void AddInPlace(float* x, float* y, int count)
    {
        int i = 0;
        if (Path != CpuKernelPath.Scalar)
            for (; i + 8 <= count; i += 8) (Vector256.Load(x + i) + Vector256.Load(y + i)).Store(x + i);
        for (; i < count; i++) x[i] += y[i];
    }

    public void SwiGlu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer dst, int count)
    {
        var gb = Buf(gate);
        var ub = Buf(up);
        var db = Buf(dst);
        Need(gb, count, nameof(gate));
        Need(ub, count, nameof(up));
        Need(db, count, nameof(dst));
        float* g = gb.Ptr, u = ub.Ptr, d = db.Ptr;
        int i = 0;
        if (Path != CpuKernelPath.Scalar)
        {
            var one = Vector256.Create(1f);
            for (; i + 8 <= count; i += 8)
            {
                var gv = Vector256.Load(g + i);
                (gv / (one + Vector256.Exp(-gv)) * Vector256.Load(u + i)).Store(d + i);
            }
        }
        for (; i < count; i++) d[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    public void Rope(DeviceBuffer x, int n, int heads, int headDim, ReadOnlySpan<int> positions, float freqBase, RopeStyle style)
    {
        var xb = Buf(x);
        CheckRope(headDim, style);
        if (positions.Length < n) throw new ArgumentException($"{positions.Length} positions for {n} rows", nameof(positions));
        Need(xb, (long)n * heads * headDim, nameof(x));
        RopeRows(xb.Ptr, n, heads, headDim, positions, freqBase, style);
    }

    private static void CheckRope(int headDim, RopeStyle style)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"head dimension {headDim} must be even and positive", nameof(headDim));
        if (style is not (RopeStyle.Normal or RopeStyle.NeoX)) throw new ArgumentOutOfRangeException(nameof(style), $"unknown RoPE style {style}");
    }

    /// <summary>RoPE in place on rows of <c>x [n, heads * headDim]</c> (checked by the caller), row r at <c>positions[r]</c>.</summary>
    private void RopeRows(float* x, int n, int heads, int headDim, ReadOnlySpan<int> positions, float freqBase, RopeStyle style)
    {
        int half = headDim / 2;
        float* invFreq = _rope.Ensure(3L * headDim);
        float* cosE = invFreq + headDim;
        float* sinE = cosE + headDim;
        if (_ropeHeadDim != headDim || BitConverter.SingleToInt32Bits(_ropeBase) != BitConverter.SingleToInt32Bits(freqBase))
        {
            // base^(-2i/d), the same f32 expression as the reference so the angles are bit-identical.
            for (int i = 0; i < half; i++) invFreq[i] = MathF.Pow(freqBase, -2f * i / headDim);
            _ropeHeadDim = headDim;
            _ropeBase = freqBase;
        }
        bool vector = Path != CpuKernelPath.Scalar && half % 8 == 0;
        for (int r = 0; r < n; r++)
        {
            int pos = positions[r];
            // Angles depend on the row's position only: computed once and shared by all heads. Expanded to
            // headDim entries so a vector rotation is out = v·cos + partner(v)·sin with sin negated on the
            // first element of each pair (x0·c − x1·s, x0·s + x1·c: the reference's products, exactly).
            for (int i = 0; i < half; i++)
            {
                float theta = pos * invFreq[i];
                float c = MathF.Cos(theta), s = MathF.Sin(theta);
                int a = style == RopeStyle.Normal ? 2 * i : i;
                int b = style == RopeStyle.Normal ? 2 * i + 1 : i + half;
                cosE[a] = c; cosE[b] = c;
                sinE[a] = -s; sinE[b] = s;
            }
            for (int h = 0; h < heads; h++)
            {
                float* v = x + ((long)r * heads + h) * headDim;
                if (vector && style == RopeStyle.Normal) RotateAdjacent(v, cosE, sinE, headDim);
                else if (vector) RotateHalves(v, cosE, sinE, half);
                else RotateScalar(v, cosE, sinE, half, style);
            }
        }
    }

    private static void RotateAdjacent(float* v, float* cosE, float* sinE, int headDim)
    {
        var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
        for (int i = 0; i < headDim; i += 8)
        {
            var x = Vector256.Load(v + i);
            (x * Vector256.Load(cosE + i) + Vector256.Shuffle(x, swap) * Vector256.Load(sinE + i)).Store(v + i);
        }
    }

    private static void RotateHalves(float* v, float* cosE, float* sinE, int half)
    {
        for (int i = 0; i < half; i += 8)
        {
            var x0 = Vector256.Load(v + i);
            var x1 = Vector256.Load(v + i + half);
            var c = Vector256.Load(cosE + i);
            var s = Vector256.Load(sinE + i + half);
            (x0 * c - x1 * s).Store(v + i);
            (x0 * s + x1 * c).Store(v + i + half);
        }
    }

    private static void RotateScalar(float* v, float* cosE, float* sinE, int half, RopeStyle style)
    {
        for (int i = 0; i < half; i++)
        {
            int a = style == RopeStyle.Normal ? 2 * i : i;
            int b = style == RopeStyle.Normal ? 2 * i + 1 : i + half;
            float c = cosE[a], s = sinE[b];
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }

    public void StoreKv(KvCache cache, int layer, DeviceBuffer k, DeviceBuffer v, int n, ReadOnlySpan<int> positions)
    {
        var c = Kv(cache);
        var kb = Buf(k);
        var vb = Buf(v);
        int d = c.KvDim;
        if (positions.Length < n) throw new ArgumentException($"{positions.Length} positions for {n} rows", nameof(positions));
        Need(kb, (long)n * d, nameof(k));
        Need(vb, (long)n * d, nameof(v));
        for (int r = 0; r < n; r++)
        {
            int pos = positions[r];
            if ((uint)pos >= (uint)c.ContextLength) throw new ArgumentOutOfRangeException(nameof(positions), $"position {pos} outside the context of {c.ContextLength}");
        }
        StoreRows(c.Keys(layer), c.Values(layer), d, kb.Ptr, vb.Ptr, positions[..n]);
    }

    /// <summary>Copies rows of <c>k, v [positions.Length, d]</c> to positions of one layer's keys and values (checked by the caller).</summary>
    private static void StoreRows(float* keys, float* values, int d, float* k, float* v, ReadOnlySpan<int> positions)
    {
        for (int r = 0; r < positions.Length; r++)
        {
            int pos = positions[r];
            Buffer.MemoryCopy(k + (long)r * d, keys + (long)pos * d, d * sizeof(float), d * sizeof(float));
            Buffer.MemoryCopy(v + (long)r * d, values + (long)pos * d, d * sizeof(float), d * sizeof(float));
        }
    }
}
