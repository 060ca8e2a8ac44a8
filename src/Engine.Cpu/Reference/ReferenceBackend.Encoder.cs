using Engine.Core.Backend;
using Engine.Core.Tensors;

namespace Engine.Cpu.Reference;

// The encoder (BERT) ops, scalar: the reference every backend's LayerNorm, GELU, softmax and encoder
// attention is tested against. Sums that decide accuracy are in f64 here so that the reference is the
// most accurate side of every comparison.
public sealed partial class ReferenceBackend
{
    public void LayerNorm(DeviceBuffer x, DeviceWeight weight, DeviceWeight bias, DeviceBuffer dst, int n, int dim, float eps)
    {
        CheckRows(x, n, dim, nameof(x));
        CheckRows(dst, n, dim, nameof(dst));
        if (weight.Cols != dim || bias.Cols != dim)
            throw new ArgumentException($"LayerNorm weight {weight.Cols} and bias {bias.Cols} must both have dim {dim} elements");
        var w = new float[dim];
        var b = new float[dim];
        RowDecoding.ToFloat(W(weight).View, 0, w);
        RowDecoding.ToFloat(W(bias).View, 0, b);
        var xs = Span(x);
        var ys = Span(dst);
        for (int r = 0; r < n; r++)
        {
            var row = xs.Slice(r * dim, dim);
            var outRow = ys.Slice(r * dim, dim);
            // Two passes in f64: mean, then the population variance around it (no E[x²] − mean² cancellation).
            double mean = 0;
            for (int i = 0; i < dim; i++) mean += row[i];
            mean /= dim;
            double var = 0;
            for (int i = 0; i < dim; i++) var += (row[i] - mean) * (row[i] - mean);
            var /= dim;
            double inv = 1 / Math.Sqrt(var + eps);
            for (int i = 0; i < dim; i++) outRow[i] = (float)((row[i] - mean) * inv * w[i] + b[i]);
        }
    }

    public void Gelu(DeviceBuffer x, DeviceBuffer dst, int count)
    {
        CheckRows(x, 1, count, nameof(x));
        CheckRows(dst, 1, count, nameof(dst));
        var xs = Span(x);
        var ys = Span(dst);
        for (int i = 0; i < count; i++)
        {
            double v = xs[i];
            ys[i] = (float)(0.5 * v * (1 + Erf(v / Math.Sqrt(2))));
        }
    }

    /// <summary>
    /// erf in f64 by its everywhere-convergent series of positive terms (Abramowitz and Stegun 7.1.6):
    /// <c>erf(x) = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))</c>. No cancellation, so the sum is good to
    /// a few f64 ulps; beyond |x| = 6, erf is ±1 in f64 (erfc(6) ≈ 2e-17).
    /// </summary>
    public static double Erf(double x)
    {
        double a = Math.Abs(x);
        if (a >= 6) return Math.Sign(x);
        double term = a, sum = a;
        for (int n = 1; n < 1000 && term > sum * 1e-18; n++)
        {
            term *= 2 * a * a / (2 * n + 1);
            sum += term;
        }
        double erf = 2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum;
        return x < 0 ? -erf : erf;
    }

    public void Softmax(DeviceBuffer x, int n, int dim)
    {
        CheckRows(x, n, dim, nameof(x));
        var xs = Span(x);
        for (int r = 0; r < n; r++) SoftmaxRow(xs.Slice(r * dim, dim));
    }

    /// <summary>Max-subtracted softmax in f32, as ggml_soft_max: e = exp(x − max), then e / Σe.</summary>
    private static void SoftmaxRow(Span<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float v in row) max = MathF.Max(max, v);
        float sum = 0;
        for (int i = 0; i < row.Length; i++) { row[i] = MathF.Exp(row[i] - max); sum += row[i]; }
        for (int i = 0; i < row.Length; i++) row[i] /= sum;
    }

    public void EncoderAttention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output,
                                 ReadOnlySpan<int> sequenceLengths, int heads, int headDim, float scale)
    {
        if (heads <= 0 || headDim <= 0) throw new ArgumentException($"{heads} heads of {headDim} is not an attention shape");
        int n = 0;
        foreach (int len in sequenceLengths)
        {
            if (len < 0) throw new ArgumentException($"sequence length {len} is negative", nameof(sequenceLengths));
            n = checked(n + len);
        }
        int width = heads * headDim;
        CheckRows(q, n, width, nameof(q));
        CheckRows(k, n, width, nameof(k));
        CheckRows(v, n, width, nameof(v));
        CheckRows(output, n, width, nameof(output));
        var qs = Span(q);
        var ks = Span(k);
        var vs = Span(v);
        var os = Span(output);
        int start = 0;
        foreach (int len in sequenceLengths)
        {
            var scores = new float[len];
            for (int r = start; r < start + len; r++)
                for (int h = 0; h < heads; h++)
                {
                    var qh = qs.Slice(r * width + h * headDim, headDim);
                    // Keys and values of this sequence only: rows [start, start + len).
                    for (int t = 0; t < len; t++)
                    {
                        var kt = ks.Slice((start + t) * width + h * headDim, headDim);
                        float s = 0;
                        for (int i = 0; i < headDim; i++) s += qh[i] * kt[i];
                        scores[t] = s * scale;
                    }
                    SoftmaxRow(scores);
                    var oh = os.Slice(r * width + h * headDim, headDim);
                    oh.Clear();
                    for (int t = 0; t < len; t++)
                    {
                        var vt = vs.Slice((start + t) * width + h * headDim, headDim);
                        for (int i = 0; i < headDim; i++) oh[i] += scores[t] * vt[i];
                    }
                }
            start += len;
        }
    }

    private static void CheckRows(DeviceBuffer b, int n, int dim, string name)
    {
        if (n < 0 || dim < 0) throw new ArgumentException($"negative shape [{n}, {dim}]", name);
        if ((long)n * dim > b.Length) throw new ArgumentException($"{name} holds {b.Length} floats, the op needs {(long)n * dim}", name);
    }
}
