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

    // Below this many elements a row op (LayerNorm, GELU, softmax) runs on the caller: releasing the workers
    // costs about a microsecond, as much as ~8K elements of GELU.
    private const long InlineRowElements = 1 << 14;

    private EncoderAttentionJob? _encoderAttentionJob;
    private EncoderRowsJob? _rowsJob;
    private int[] _sequenceStart = new int[8];  // [sequences] first row of each sequence
    private int[] _sequenceLength = new int[8]; // [sequences] rows of each sequence

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
        RunRows(RowOp.LayerNorm, xb.Ptr, yb.Ptr, wt.Vector, bt.Vector, n, dim, eps);
    }

    private void LayerNormRows(float* x, float* dst, float* w, float* b, int r0, int r1, int dim, float eps)
    {
        bool vector = Path != CpuKernelPath.Scalar;
        for (int r = r0; r < r1; r++)
        {
            float* row = x + (long)r * dim;
            float* outRow = dst + (long)r * dim;
            if (vector) LayerNormRowVector(row, w, b, outRow, dim, eps);
            else LayerNormRowScalar(row, w, b, outRow, dim, eps);
        }
    }

    // LayerNorm rows in f32, three passes: the mean, the population variance around it (no E[x²] − mean²
    // cancellation), the output. Values are first shifted by the row's first element: rows of a residual
    // stream can sit far from zero (an offset of 100 against a spread of 1), where an f32 mean is off by
    // half an ulp of the offset, ~1e-6 of the spread in every output (measured 2e-6 against the f64
    // reference). x − shift is exact there (Sterbenz), and sums of the shifted values are sums of small numbers.

    private static void LayerNormRowScalar(float* row, float* w, float* b, float* outRow, int dim, float eps)
    {
        // One running sum has no lanes to split it: its terms are added in f64 (each term is still f32).
        float shift = row[0];
        double sum = 0;
        for (int i = 0; i < dim; i++) sum += row[i] - shift;
        float mean = (float)(sum / dim); // of the shifted values
        double ss = 0;
        for (int i = 0; i < dim; i++)
        {
            float d = row[i] - shift - mean;
            ss += d * d;
        }
        float inv = 1f / MathF.Sqrt((float)(ss / dim) + eps);
        for (int i = 0; i < dim; i++) outRow[i] = (row[i] - shift - mean) * inv * w[i] + b[i];
    }

    private static void LayerNormRowVector(float* row, float* w, float* b, float* outRow, int dim, float eps)
    {
        float shift = row[0];
        var vshift = Vector256.Create(shift);
        int i = 0;
        var s0 = Vector256<float>.Zero;
        var s1 = Vector256<float>.Zero;
        for (; i + 16 <= dim; i += 16)
        {
            s0 += Vector256.Load(row + i) - vshift;
            s1 += Vector256.Load(row + i + 8) - vshift;
        }
        for (; i + 8 <= dim; i += 8) s0 += Vector256.Load(row + i) - vshift;
        float sum = Vector256.Sum(s0 + s1);
        for (; i < dim; i++) sum += row[i] - shift;
        float mean = sum / dim; // of the shifted values

        var vm = Vector256.Create(mean);
        s0 = Vector256<float>.Zero;
        s1 = Vector256<float>.Zero;
        i = 0;
        for (; i + 16 <= dim; i += 16)
        {
            var d0 = Vector256.Load(row + i) - vshift - vm;
            var d1 = Vector256.Load(row + i + 8) - vshift - vm;
            s0 = Vector256.MultiplyAddEstimate(d0, d0, s0);
            s1 = Vector256.MultiplyAddEstimate(d1, d1, s1);
        }
        for (; i + 8 <= dim; i += 8)
        {
            var d0 = Vector256.Load(row + i) - vshift - vm;
            s0 = Vector256.MultiplyAddEstimate(d0, d0, s0);
        }
        float ss = Vector256.Sum(s0 + s1);
        for (; i < dim; i++)
        {
            float d = row[i] - shift - mean;
            ss += d * d;
        }
        float inv = 1f / MathF.Sqrt(ss / dim + eps);

        var vi = Vector256.Create(inv);
        i = 0;
        for (; i + 8 <= dim; i += 8)
            Vector256.MultiplyAddEstimate((Vector256.Load(row + i) - vshift - vm) * vi, Vector256.Load(w + i), Vector256.Load(b + i)).Store(outRow + i);
        for (; i < dim; i++) outRow[i] = (row[i] - shift - mean) * inv * w[i] + b[i];
    }

    public void Gelu(DeviceBuffer x, DeviceBuffer dst, int count)
    {
        var xb = Buf(x);
        var db = Buf(dst);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Need(xb, count, nameof(x));
        Need(db, count, nameof(dst));
        RunRows(RowOp.Gelu, xb.Ptr, db.Ptr, null, null, count, 1, 0);
    }

    /// <summary>GELU of elements [i0, i1): 16 lanes where AVX-512 is there (best path only), else 8, scalar tails.</summary>
    private void GeluRange(float* xs, float* ds, int i0, int i1)
    {
        int i = i0;
        if (Path == CpuKernelPath.Avx2 && Vector512.IsHardwareAccelerated)
            for (; i + 16 <= i1; i += 16) GeluVector(Vector512.Load(xs + i)).Store(ds + i);
        if (Path != CpuKernelPath.Scalar)
            for (; i + 8 <= i1; i += 8) GeluVector(Vector256.Load(xs + i)).Store(ds + i);
        for (; i < i1; i++) ds[i] = ErfApproximation.Gelu(xs[i]);
    }

    /// <summary><see cref="GeluVector(Vector256{float})"/> on 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GeluVector(Vector512<float> x)
    {
        var z = x * Vector512.Create(ErfApproximation.InvSqrt2);
        var a = Vector512.Abs(z);
        var one = Vector512.Create(1f);
        var t = one / Vector512.MultiplyAddEstimate(Vector512.Create(ErfApproximation.P), a, one);
        var poly = Vector512.MultiplyAddEstimate(t, Vector512.Create(ErfApproximation.A5), Vector512.Create(ErfApproximation.A4));
        poly = Vector512.MultiplyAddEstimate(t, poly, Vector512.Create(ErfApproximation.A3));
        poly = Vector512.MultiplyAddEstimate(t, poly, Vector512.Create(ErfApproximation.A2));
        poly = Vector512.MultiplyAddEstimate(t, poly, Vector512.Create(ErfApproximation.A1));
        var e = t * poly * Vector512.Exp(-(a * a)); // erfc(|z|)
        var onePlusErf = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(z, Vector512<float>.Zero), Vector512.Create(2f) - e, e);
        return Vector512.Create(0.5f) * x * onePlusErf;
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
        RunRows(RowOp.Softmax, xb.Ptr, xb.Ptr, null, null, n, dim, 0);
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

    private enum RowOp { LayerNorm, Gelu, Softmax }

    /// <summary>
    /// Runs a row op over <c>[rows, dim]</c> (GELU: <c>rows</c> elements, dim 1) on the caller when it is small,
    /// else in chunks of rows taken by the pool's workers (BERT batches: thousands of rows of 384 or 1536).
    /// </summary>
    private void RunRows(RowOp op, float* x, float* dst, float* w, float* b, int rows, int dim, float eps)
    {
        if (rows == 0) return;
        long elements = (long)rows * dim;
        var job = _rowsJob ??= new EncoderRowsJob(this);
        job.Op = op;
        job.X = x;
        job.Dst = dst;
        job.W = w;
        job.B = b;
        job.Rows = rows;
        job.Dim = dim;
        job.Eps = eps;
        job.Next = 0;
        if (Threads == 1 || elements < InlineRowElements)
        {
            job.Chunk = rows;
            job.Execute(0, 1);
            return;
        }
        // About ChunksPerWorker chunks per worker (see MatMul); GELU chunks whole vectors of 16.
        int chunk = Math.Max(1, rows / (Threads * ChunksPerWorker));
        if (op == RowOp.Gelu) chunk = (chunk + 15) & ~15;
        job.Chunk = chunk;
        _pool.Run(job);
    }

    /// <summary>A row op as a pool job: workers take chunks of <see cref="Chunk"/> rows from a shared counter.</summary>
    private sealed class EncoderRowsJob(CpuBackend owner) : WorkerPool.Job
    {
        public RowOp Op;
        public float* X, Dst; // [Rows, Dim] f32
        public float* W, B;   // [Dim] f32 (LayerNorm)
        public int Rows, Dim, Chunk;
        public float Eps;
        public int Next;

        public override void Execute(int worker, int workers)
        {
            bool vector = owner.Path != CpuKernelPath.Scalar;
            long r0;
            while ((r0 = (long)(Interlocked.Increment(ref Next) - 1) * Chunk) < Rows)
            {
                int r1 = (int)Math.Min(Rows, r0 + Chunk);
                switch (Op)
                {
                    case RowOp.LayerNorm: owner.LayerNormRows(X, Dst, W, B, (int)r0, r1, Dim, Eps); break;
                    case RowOp.Gelu: owner.GeluRange(X, Dst, (int)r0, r1); break;
                    default:
                        for (long r = r0; r < r1; r++) SoftmaxRow(X + r * Dim, Dim, vector);
                        break;
                }
            }
        }
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

        int sequences = sequenceLengths.Length;
        if (_sequenceStart.Length < sequences)
        {
            int grown = Math.Max(sequences, 2 * _sequenceStart.Length);
            _sequenceStart = new int[grown];
            _sequenceLength = new int[grown];
        }
        int start = 0;
        for (int s = 0; s < sequences; s++)
        {
            _sequenceStart[s] = start;
            _sequenceLength[s] = sequenceLengths[s];
            start += sequenceLengths[s];
        }
        // Per worker: keys of one (sequence, head) transposed, [headDim, padded length], then a score row.
        int padded = PadTo8(maxLen);
        for (int i = 0; i < _workerScratch.Length; i++) _workerScratch[i].Ensure((long)(headDim + 1) * padded);

        var job = _encoderAttentionJob ??= new EncoderAttentionJob(this);
        job.Q = qb.Ptr;
        job.K = kb.Ptr;
        job.V = vb.Ptr;
        job.Output = ob.Ptr;
        job.Sequences = sequences;
        job.Heads = heads;
        job.HeadDim = headDim;
        job.Scale = scale;
        job.Next = 0;
        if (macs < InlineEncoderAttentionMacs) job.Execute(0, 1);
        else _pool.Run(job);
    }

    private static int PadTo8(int x) => (x + 7) & ~7;

    /// <summary>
    /// Encoder attention as a pool job: one unit is one (sequence, head), taken from a shared counter. The
    /// vector paths transpose that head's keys once (<c>[headDim, length]</c>) so that each row's scores are
    /// 8 keys per FMA with no horizontal sums, then softmax with a vector exp, then p·V with the output held in
    /// registers. The scalar path keeps the reference's loops.
    /// </summary>
    private sealed class EncoderAttentionJob(CpuBackend owner) : WorkerPool.Job
    {
        public float* Q, K, V; // [N, Heads * HeadDim] f32
        public float* Output;  // [N, Heads * HeadDim] f32
        public int Sequences, Heads, HeadDim;
        public float Scale;
        public int Next;

        public override void Execute(int worker, int workers)
        {
            float* scratch = owner._workerScratch[worker].Ptr;
            bool vector = owner.Path != CpuKernelPath.Scalar;
            int units = Sequences * Heads;
            int u;
            while ((u = Interlocked.Increment(ref Next) - 1) < units)
            {
                int s = u / Heads, h = u % Heads;
                int len = owner._sequenceLength[s];
                if (len == 0) continue;
                int start = owner._sequenceStart[s];
                if (vector) HeadVector(start, len, h, scratch);
                else HeadScalar(start, len, h, scratch);
            }
        }

        private void HeadScalar(int start, int len, int h, float* scores)
        {
            int width = Heads * HeadDim;
            // Keys and values of this sequence only: rows [start, start + len).
            float* k0 = K + (long)start * width + h * HeadDim;
            float* v0 = V + (long)start * width + h * HeadDim;
            for (int r = start; r < start + len; r++)
            {
                float* qh = Q + (long)r * width + h * HeadDim;
                float* oh = Output + (long)r * width + h * HeadDim;
                for (int t = 0; t < len; t++) scores[t] = FloatKernels.DotScalar(qh, k0 + (long)t * width, HeadDim) * Scale;
                SoftmaxRow(scores, len, vector: false);
                new Span<float>(oh, HeadDim).Clear();
                for (int t = 0; t < len; t++)
                {
                    float p = scores[t];
                    float* vt = v0 + (long)t * width;
                    for (int i = 0; i < HeadDim; i++) oh[i] += p * vt[i];
                }
            }
        }

        private void HeadVector(int start, int len, int h, float* scratch)
        {
            int width = Heads * HeadDim, d = HeadDim;
            int padded = PadTo8(len);
            float* kt = scratch;              // [HeadDim, padded] f32: this head's keys, transposed
            float* scores = kt + d * padded;  // [padded] f32
            float* k0 = K + (long)start * width + h * d;
            float* v0 = V + (long)start * width + h * d;
            for (int t = 0; t < len; t++)
            {
                float* kr = k0 + (long)t * width;
                for (int i = 0; i < d; i++) kt[i * padded + t] = kr[i];
            }
            for (int i = 0; i < d; i++)
                for (int t = len; t < padded; t++) kt[i * padded + t] = 0; // padding keys: scored, never used

            var vscale = Vector256.Create(Scale);
            for (int r = start; r < start + len; r++)
            {
                float* qh = Q + (long)r * width + h * d;
                int tb = 0;
                for (; tb + 32 <= padded; tb += 32)
                {
                    var a0 = Vector256<float>.Zero;
                    var a1 = Vector256<float>.Zero;
                    var a2 = Vector256<float>.Zero;
                    var a3 = Vector256<float>.Zero;
                    float* col = kt + tb;
                    for (int i = 0; i < d; i++, col += padded)
                    {
                        var qi = Vector256.Create(qh[i]);
                        a0 = Vector256.MultiplyAddEstimate(qi, Vector256.Load(col), a0);
                        a1 = Vector256.MultiplyAddEstimate(qi, Vector256.Load(col + 8), a1);
                        a2 = Vector256.MultiplyAddEstimate(qi, Vector256.Load(col + 16), a2);
                        a3 = Vector256.MultiplyAddEstimate(qi, Vector256.Load(col + 24), a3);
                    }
                    (a0 * vscale).Store(scores + tb);
                    (a1 * vscale).Store(scores + tb + 8);
                    (a2 * vscale).Store(scores + tb + 16);
                    (a3 * vscale).Store(scores + tb + 24);
                }
                for (; tb < padded; tb += 8)
                {
                    var a0 = Vector256<float>.Zero;
                    float* col = kt + tb;
                    for (int i = 0; i < d; i++, col += padded)
                        a0 = Vector256.MultiplyAddEstimate(Vector256.Create(qh[i]), Vector256.Load(col), a0);
                    (a0 * vscale).Store(scores + tb);
                }
                SoftmaxRow(scores, len, vector: true);

                // output[r, h] = Σ_t p_t · v_t, 8 output lanes at a time held in a register across t.
                float* oh = Output + (long)r * width + h * d;
                int ib = 0;
                for (; ib + 16 <= d; ib += 16)
                {
                    var o0 = Vector256<float>.Zero;
                    var o1 = Vector256<float>.Zero;
                    float* vt = v0 + ib;
                    for (int t = 0; t < len; t++, vt += width)
                    {
                        var p = Vector256.Create(scores[t]);
                        o0 = Vector256.MultiplyAddEstimate(p, Vector256.Load(vt), o0);
                        o1 = Vector256.MultiplyAddEstimate(p, Vector256.Load(vt + 8), o1);
                    }
                    o0.Store(oh + ib);
                    o1.Store(oh + ib + 8);
                }
                for (; ib + 8 <= d; ib += 8)
                {
                    var o0 = Vector256<float>.Zero;
                    float* vt = v0 + ib;
                    for (int t = 0; t < len; t++, vt += width)
                        o0 = Vector256.MultiplyAddEstimate(Vector256.Create(scores[t]), Vector256.Load(vt), o0);
                    o0.Store(oh + ib);
                }
                for (; ib < d; ib++)
                {
                    float acc = 0;
                    for (int t = 0; t < len; t++) acc += scores[t] * v0[(long)t * width + ib];
                    oh[ib] = acc;
                }
            }
        }
    }
}
