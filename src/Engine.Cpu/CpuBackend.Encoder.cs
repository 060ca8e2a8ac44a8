using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Engine.Core.Backend;
using Engine.Core.Numerics;
using Engine.Cpu.Kernels;
using Engine.Cpu.Threading;

namespace Engine.Cpu;

// The encoder (BERT) ops: LayerNorm, exact GELU (erf by Abramowitz and Stegun 7.1.26, see
// ErfApproximation), row softmax, and masked bidirectional attention over packed sequences.
// Vector paths use Vector256; the scalar path keeps the reference's loop order in f32.
public sealed unsafe partial class CpuBackend
{
    // Below this many multiply-adds (q·k plus p·v over all rows and heads) encoder attention runs on the caller.
    private const long InlineEncoderAttentionMacs = 1 << 15;

    private EncoderAttentionJob? _encoderAttentionJob;
    private int[] _rowSequenceStart = new int[16]; // [n] first row of each row's sequence
    private int[] _rowSequenceLength = new int[16]; // [n] length of each row's sequence

    public void LayerNorm(DeviceBuffer x, DeviceWeight weight, DeviceWeight bias, DeviceBuffer dst, int n, int dim, float eps)
    {
        var xb = Buf(x);
        var yb = Buf(dst);
        var wt = Wt(weight);
        var bt = Wt(bias);
        if (n < 0 || dim <= 0) throw new ArgumentException($"LayerNorm shape [{n}, {dim}] is not a batch of rows");
        if (wt.Cols < dim) throw new ArgumentException($"norm weight '{wt.Name}' has {wt.Cols} elements, rows have {dim}", nameof(weight));
        if (bt.Cols < dim) throw new ArgumentException($"norm bias '{bt.Name}' has {bt.Cols} elements, rows have {dim}", nameof(bias));
        Need(xb, (long)n * dim, nameof(x));
        Need(yb, (long)n * dim, nameof(dst));
        float* w = wt.Vector, b = bt.Vector;
        bool vector = Path != CpuKernelPath.Scalar;
        for (int r = 0; r < n; r++)
        {
            float* row = xb.Ptr + (long)r * dim;
            float* outRow = yb.Ptr + (long)r * dim;
            if (vector) LayerNormRowVector(row, w, b, outRow, dim, eps);
            else LayerNormRowScalar(row, w, b, outRow, dim, eps);
        }
    }

    /// <summary>Two passes in f32: mean, then the population variance around it (no E[x²] − mean² cancellation).</summary>
    private static void LayerNormRowScalar(float* row, float* w, float* b, float* outRow, int dim, float eps)
    {
        // The mean is summed in f64: rows of a residual stream can sit far from zero, and an f32 running sum
        // of a few hundred of them loses ~1e-6 of the mean (measured), which shows in every output.
        double sum = 0;
        for (int i = 0; i < dim; i++) sum += row[i];
        float mean = (float)(sum / dim);
        float ss = 0;
        for (int i = 0; i < dim; i++) ss += (row[i] - mean) * (row[i] - mean);
        float inv = 1f / MathF.Sqrt(ss / dim + eps);
        for (int i = 0; i < dim; i++) outRow[i] = (row[i] - mean) * inv * w[i] + b[i];
    }

    private static void LayerNormRowVector(float* row, float* w, float* b, float* outRow, int dim, float eps)
    {
        // Mean summed in f64 lanes (see LayerNormRowScalar), the variance around it in f32 lanes.
        int i = 0;
        var m0 = Vector256<double>.Zero;
        var m1 = Vector256<double>.Zero;
        for (; i + 8 <= dim; i += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(row + i));
            m0 += lo;
            m1 += hi;
        }
        double sum = Vector256.Sum(m0 + m1);
        for (; i < dim; i++) sum += row[i];
        float mean = (float)(sum / dim);

        var vm = Vector256.Create(mean);
        var s0 = Vector256<float>.Zero;
        var s1 = Vector256<float>.Zero;
        i = 0;
        for (; i + 16 <= dim; i += 16)
        {
            var d0 = Vector256.Load(row + i) - vm;
            var d1 = Vector256.Load(row + i + 8) - vm;
            s0 = Vector256.MultiplyAddEstimate(d0, d0, s0);
            s1 = Vector256.MultiplyAddEstimate(d1, d1, s1);
        }
        for (; i + 8 <= dim; i += 8)
        {
            var d0 = Vector256.Load(row + i) - vm;
            s0 = Vector256.MultiplyAddEstimate(d0, d0, s0);
        }
        float ss = Vector256.Sum(s0 + s1);
        for (; i < dim; i++) ss += (row[i] - mean) * (row[i] - mean);
        float inv = 1f / MathF.Sqrt(ss / dim + eps);

        var vi = Vector256.Create(inv);
        i = 0;
        for (; i + 8 <= dim; i += 8)
            Vector256.MultiplyAddEstimate((Vector256.Load(row + i) - vm) * vi, Vector256.Load(w + i), Vector256.Load(b + i)).Store(outRow + i);
        for (; i < dim; i++) outRow[i] = (row[i] - mean) * inv * w[i] + b[i];
    }

    public void Gelu(DeviceBuffer x, DeviceBuffer dst, int count)
    {
        var xb = Buf(x);
        var db = Buf(dst);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Need(xb, count, nameof(x));
        Need(db, count, nameof(dst));
        float* xs = xb.Ptr, ds = db.Ptr;
        int i = 0;
        if (Path != CpuKernelPath.Scalar)
            for (; i + 8 <= count; i += 8) GeluVector(Vector256.Load(xs + i)).Store(ds + i);
        for (; i < count; i++) ds[i] = ErfApproximation.Gelu(xs[i]);
    }

    /// <summary><see cref="ErfApproximation.Gelu"/> on 8 lanes: 0.5 x (1 + erf(x/√2)), the left tail as erfc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GeluVector(Vector256<float> x)
    {
        var z = x * Vector256.Create(ErfApproximation.InvSqrt2);
        var a = Vector256.Abs(z);
        var one = Vector256.Create(1f);
        var t = one / Vector256.MultiplyAddEstimate(Vector256.Create(ErfApproximation.P), a, one);
        var poly = Vector256.MultiplyAddEstimate(t, Vector256.Create(ErfApproximation.A5), Vector256.Create(ErfApproximation.A4));
        poly = Vector256.MultiplyAddEstimate(t, poly, Vector256.Create(ErfApproximation.A3));
        poly = Vector256.MultiplyAddEstimate(t, poly, Vector256.Create(ErfApproximation.A2));
        poly = Vector256.MultiplyAddEstimate(t, poly, Vector256.Create(ErfApproximation.A1));
        var e = t * poly * Vector256.Exp(-(a * a)); // erfc(|z|)
        var onePlusErf = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(z, Vector256<float>.Zero), Vector256.Create(2f) - e, e);
        return Vector256.Create(0.5f) * x * onePlusErf;
    }

    public void Softmax(DeviceBuffer x, int n, int dim)
    {
        var xb = Buf(x);
        if (n < 0 || dim <= 0) throw new ArgumentException($"softmax shape [{n}, {dim}] is not a batch of rows");
        Need(xb, (long)n * dim, nameof(x));
        bool vector = Path != CpuKernelPath.Scalar;
        for (int r = 0; r < n; r++) SoftmaxRow(xb.Ptr + (long)r * dim, dim, vector);
    }

    /// <summary>Max-subtracted softmax of one row in place, f32: e = exp(x − max), then e / Σe.</summary>
    private static void SoftmaxRow(float* row, int dim, bool vector)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (vector && dim >= 8)
        {
            var vmax = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= dim; i += 8) vmax = Vector256.Max(vmax, Vector256.Load(row + i));
            for (int j = 0; j < 8; j++) max = MathF.Max(max, vmax[j]);
        }
        for (; i < dim; i++) max = MathF.Max(max, row[i]);

        float sum = 0;
        i = 0;
        if (vector)
        {
            var vm = Vector256.Create(max);
            var vs = Vector256<float>.Zero;
            for (; i + 8 <= dim; i += 8)
            {
                var e = Vector256.Exp(Vector256.Load(row + i) - vm);
                e.Store(row + i);
                vs += e;
            }
            sum = Vector256.Sum(vs);
        }
        for (; i < dim; i++)
        {
            float e = MathF.Exp(row[i] - max);
            row[i] = e;
            sum += e;
        }

        i = 0;
        if (vector)
        {
            var vsum = Vector256.Create(sum);
            for (; i + 8 <= dim; i += 8) (Vector256.Load(row + i) / vsum).Store(row + i);
        }
        for (; i < dim; i++) row[i] /= sum;
    }

    public void EncoderAttention(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v, DeviceBuffer output,
                                 ReadOnlySpan<int> sequenceLengths, int heads, int headDim, float scale)
    {
        var qb = Buf(q);
        var kb = Buf(k);
        var vb = Buf(v);
        var ob = Buf(output);
        if (heads <= 0 || headDim <= 0) throw new ArgumentException($"{heads} heads of {headDim} is not an attention shape", nameof(heads));
        long total = 0;
        int maxLen = 0;
        long macs = 0;
        foreach (int len in sequenceLengths)
        {
            if (len < 0) throw new ArgumentException($"sequence length {len} is negative", nameof(sequenceLengths));
            total += len;
            maxLen = Math.Max(maxLen, len);
            macs += 2L * len * len * heads * headDim;
        }
        int width = heads * headDim;
        if (total * width > int.MaxValue) throw new ArgumentException($"{total} rows of {width} do not fit a buffer", nameof(sequenceLengths));
        int n = (int)total;
        Need(qb, (long)n * width, nameof(q));
        Need(kb, (long)n * width, nameof(k));
        Need(vb, (long)n * width, nameof(v));
        Need(ob, (long)n * width, nameof(output));
        if (n == 0) return;

        if (_rowSequenceStart.Length < n)
        {
            int grown = Math.Max(n, 2 * _rowSequenceStart.Length);
            _rowSequenceStart = new int[grown];
            _rowSequenceLength = new int[grown];
        }
        int start = 0;
        foreach (int len in sequenceLengths)
        {
            for (int r = start; r < start + len; r++)
            {
                _rowSequenceStart[r] = start;
                _rowSequenceLength[r] = len;
            }
            start += len;
        }
        for (int i = 0; i < _workerScratch.Length; i++) _workerScratch[i].Ensure(maxLen);

        var job = _encoderAttentionJob ??= new EncoderAttentionJob(this);
        job.Q = qb.Ptr;
        job.K = kb.Ptr;
        job.V = vb.Ptr;
        job.Output = ob.Ptr;
        job.N = n;
        job.Heads = heads;
        job.HeadDim = headDim;
        job.Scale = scale;
        job.Next = 0;
        if (macs < InlineEncoderAttentionMacs) job.Execute(0, 1);
        else _pool.Run(job);
    }

    /// <summary>Encoder attention as a pool job: one unit is one (row, head); workers take units from a shared counter.</summary>
    private sealed class EncoderAttentionJob(CpuBackend owner) : WorkerPool.Job
    {
        public float* Q, K, V; // [N, Heads * HeadDim] f32
        public float* Output;  // [N, Heads * HeadDim] f32
        public int N, Heads, HeadDim;
        public float Scale;
        public int Next;

        public override void Execute(int worker, int workers)
        {
            float* scores = owner._workerScratch[worker].Ptr; // [len] f32
            bool vector = owner.Path != CpuKernelPath.Scalar;
            int width = Heads * HeadDim;
            int units = N * Heads;
            int u;
            while ((u = Interlocked.Increment(ref Next) - 1) < units)
            {
                int r = u / Heads, h = u % Heads;
                int start = owner._rowSequenceStart[r];
                int len = owner._rowSequenceLength[r];
                float* qh = Q + (long)u * HeadDim;
                float* oh = Output + (long)u * HeadDim;
                // Keys and values of this row's sequence only: rows [start, start + len).
                float* k0 = K + (long)start * width + h * HeadDim;
                float* v0 = V + (long)start * width + h * HeadDim;
                for (int t = 0; t < len; t++)
                {
                    float* kt = k0 + (long)t * width;
                    scores[t] = (vector ? FloatKernels.Dot(qh, kt, HeadDim) : FloatKernels.DotScalar(qh, kt, HeadDim)) * Scale;
                }
                SoftmaxRow(scores, len, vector);
                new Span<float>(oh, HeadDim).Clear();
                for (int t = 0; t < len; t++)
                {
                    float p = scores[t];
                    float* vt = v0 + (long)t * width;
                    int i = 0;
                    if (vector)
                    {
                        var vp = Vector256.Create(p);
                        for (; i + 8 <= HeadDim; i += 8)
                            Vector256.MultiplyAddEstimate(vp, Vector256.Load(vt + i), Vector256.Load(oh + i)).Store(oh + i);
                    }
                    for (; i < HeadDim; i++) oh[i] += p * vt[i];
                }
            }
        }
    }
}
