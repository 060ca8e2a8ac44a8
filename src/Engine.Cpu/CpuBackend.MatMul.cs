using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Core.Quant;
using Engine.Cpu.Kernels;
using Engine.Cpu.Threading;

namespace Engine.Cpu;

public sealed unsafe partial class CpuBackend
{
    // Rows of one target handed to a worker at a time (a multiple of the 4-row kernel). 16 rows of a
    // 576-wide Q8_0 matrix are ~10 KB, a microsecond of work: small enough to balance two busy cores,
    // large enough that the shared chunk counter is not contended.
    private const int ChunkRowsVector = 16;
    private const int ChunkRowsBatch = 8;

    // Tiled batches (n >= FloatTileKernels.MinRows): a chunk of weight rows is swept by every tile of
    // activation rows while it sits in L2, so larger chunks read the activations fewer times. 64 rows of a
    // 1536-wide f32 matrix are 384 KB, within Zen 4's 1 MB L2 (and the widened F16/BF16 copy in scratch).
    private const int ChunkRowsTiled = 64;

    // With several threads, chunks are sized so each worker takes about this many per product: enough
    // to even out a late or slower worker, few enough to keep the shared counter quiet.
    private const int ChunksPerWorker = 4;

    // Below this many multiply-adds a product runs on the calling thread alone: releasing the workers
    // costs about a microsecond, as much as the work.
    private const long InlineMacs = 1 << 15;

    private readonly NativeScratch<sbyte> _xq = new(); // [n, cols] int8, quantized activations
    private readonly NativeScratch<float> _xd = new(); // [n, cols / 32] f32 block scales
    private readonly NativeScratch<float> _xf = new(); // [n, cols] f32: xd · xq, for the dequantized batched Q8_0 kernel
    private readonly NativeScratch<float>[] _workerScratch; // per worker: a decoded weight row, attention scores
    private readonly MatMulJob _matMulJob;
    private readonly QuantizeJob _quantizeJob;

    public void MatMul(DeviceBuffer x, int n, ReadOnlySpan<MatMulTarget> targets)
    {
        if (targets.Length == 0 || n == 0) return;
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var xb = Buf(x);
        int cols = targets[0].Weight.Cols;
        Need(xb, (long)n * cols, nameof(x));

        var job = _matMulJob;
        job.EnsureTargets(targets.Length);
        bool anyQ8 = false;
        bool tiled = n >= FloatTileKernels.MinRows && Path != CpuKernelPath.Scalar;
        // batched Q8_0 kernel on the AVX2 path (Q8Batch), null where Q8_0 targets take the per-row kernel
        Q8BatchKernel? q8Tile = tiled && Path == CpuKernelPath.Avx2 && Q8_0TileKernels.IsSupported ? Q8Batch : null;
        int chunkRows = n == 1 ? ChunkRowsVector : tiled ? ChunkRowsTiled : ChunkRowsBatch;
        if (tiled && Threads > 1)
        {
            // Enough chunks to balance the workers, none larger than ChunkRowsTiled.
            long totalRows = 0;
            foreach (var target in targets) totalRows += target.Weight.Rows;
            int balanced = (int)(totalRows / ((long)Threads * ChunksPerWorker)) & ~3;
            chunkRows = Math.Clamp(balanced, ChunkRowsBatch, ChunkRowsTiled);
        }
        else if (Threads > 1)
        {
            // Hand out about ChunksPerWorker chunks per worker rather than many tiny ones: every chunk
            // taken is an atomic increment on a cache line the cores pass back and forth, which on these
            // VMs costs as much as the rows it hands out (measured: 2 threads slower than 1 with 16-row chunks).
            long totalRows = 0;
            foreach (var target in targets) totalRows += target.Weight.Rows;
            int balanced = (int)(totalRows / ((long)Threads * ChunksPerWorker)) & ~3;
            chunkRows = Math.Max(chunkRows, balanced);
        }
        int chunks = 0;
        long macs = 0;
        long scratchFloats = cols;
        for (int t = 0; t < targets.Length; t++)
        {
            var w = Wt(targets[t].Weight);
            if (w.Cols != cols) throw new ArgumentException($"fused targets differ in width: '{w.Name}' has {w.Cols} columns, '{targets[0].Weight.Name}' {cols}", nameof(targets));
            var y = Buf(targets[t].Output);
            if (y.Length < (long)n * w.Rows) ThrowOutputTooSmall(w, y, n);
            anyQ8 |= w.Type == GgmlType.Q8_0;
            if (tiled)
                scratchFloats = Math.Max(scratchFloats, w.Type != GgmlType.Q8_0 ? FloatTileKernels.ScratchFloats(w.Type, chunkRows, cols) : q8Tile switch
                {
                    Q8BatchKernel.DequantizedF32 => Q8_0DequantizedTileKernels.ScratchFloats(chunkRows, cols),
                    Q8BatchKernel.Int16Avx512 => Q8_0Avx512TileKernels.ScratchFloats(chunkRows, cols),
                    _ => Q8_0TileKernels.ScratchFloats(chunkRows, cols),
                });
            int c = (w.Rows + chunkRows - 1) / chunkRows;
            job.Targets[t] = new TargetInfo(w.Data, w.RowBytes, w.Rows, w.Type, y.Ptr, chunks);
            chunks += c;
            macs += (long)w.Rows * cols * n;
        }

        job.TargetCount = targets.Length;
        job.X = xb.Ptr;
        job.N = n;
        job.Cols = cols;
        job.ChunkRows = chunkRows;
        job.Tiled = tiled;
        job.Q8Tile = q8Tile;
        job.Prefetch = PrefetchNextChunk;
        job.Chunks = chunks;
        job.Next = 0;
        // per worker: a widened weight row (float targets, cols), a widened chunk (tiled F16/BF16 targets,
        // chunkRows · cols) or the block scales of a 4-row group (cols / 4)
        for (int i = 0; i < _workerScratch.Length; i++) _workerScratch[i].Ensure(scratchFloats);
        if (anyQ8)
        {
            job.Xq = _xq.Ensure((long)n * cols);
            job.Xd = _xd.Ensure((long)n * (cols / BlockQ8_0.Size));
            job.Xf = q8Tile == Q8BatchKernel.DequantizedF32 ? _xf.Ensure((long)n * cols) : null;
            QuantizeActivations(xb.Ptr, n, cols, job.Xq, job.Xd, job.Xf);
        }

        if (macs < InlineMacs) job.Execute(0, 1);
        else _pool.Run(job);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowOutputTooSmall(CpuWeight w, CpuBuffer y, int n) =>
        throw new ArgumentException($"output of '{w.Name}' holds {y.Length} floats, the product needs {(long)n * w.Rows}");

    /// <summary>
    /// Quantizes <c>x [n, cols]</c> once for all targets (and dequantizes it into <paramref name="xf"/> unless null); rows
    /// are split over the workers when there are several.
    /// </summary>
    private void QuantizeActivations(float* x, int n, int cols, sbyte* xq, float* xd, float* xf)
    {
        if (n < 2 * Threads || Threads == 1)
        {
            for (int j = 0; j < n; j++) QuantizeActivationRow(Path, x, cols, xq, xd, xf, j);
            return;
        }
        var q = _quantizeJob;
        q.X = x; q.N = n; q.Cols = cols; q.Xq = xq; q.Xd = xd; q.Xf = xf; q.Next = 0;
        _pool.Run(q);
    }

    private static void QuantizeActivationRow(CpuKernelPath path, float* x, int cols, sbyte* xq, float* xd, float* xf, int j)
    {
        int nb = cols / BlockQ8_0.Size;
        Q8_0Kernels.QuantizeRow(path, x + (long)j * cols, cols, xq + (long)j * cols, xd + (long)j * nb);
        if (xf != null) Q8_0DequantizedTileKernels.DequantizeRow(xq + (long)j * cols, xd + (long)j * nb, xf + (long)j * cols, cols);
    }

    /// <summary>One fused target resolved to pointers: <c>Y [n, Rows] = x · Wᵀ</c>; its chunks start at <c>FirstChunk</c>.</summary>
    private readonly struct TargetInfo(byte* w, long rowBytes, int rows, GgmlType type, float* y, int firstChunk)
    {
        public readonly byte* W = w;          // [Rows, RowBytes] in the file's type
        public readonly long RowBytes = rowBytes;
        public readonly int Rows = rows;
        public readonly GgmlType Type = type;
        public readonly float* Y = y;         // [n, Rows] f32
        public readonly int FirstChunk = firstChunk;
    }

    /// <summary>The matrix product as a pool job: workers take chunks of rows from a shared counter.</summary>
    private sealed class MatMulJob(CpuBackend owner) : WorkerPool.Job
    {
        public TargetInfo[] Targets = new TargetInfo[4];
        public int TargetCount;
        public float* X;      // [N, Cols] f32
        public sbyte* Xq;     // [N, Cols] int8 (Q8_0 targets)
        public float* Xd;     // [N, Cols / 32] f32
        public float* Xf;     // [N, Cols] f32 (Q8_0 targets, dequantized batched kernel)
        public int N, Cols, ChunkRows, Chunks;
        public bool Tiled;    // float targets take the register-tiled batch kernel
        public Q8BatchKernel? Q8Tile; // the batched kernel Q8_0 targets take, null for the per-row kernel
        public bool Prefetch; // the dequantized batched kernel fetches its next chunk during the current one
        public int Next;      // next chunk to take

        public void EnsureTargets(int count)
        {
            if (Targets.Length < count) Targets = new TargetInfo[count];
        }

        public override void Execute(int worker, int workers)
        {
            // The dequantized batched kernel claims its next chunk before computing the current one and streams the
            // next chunk's weights into L2 meanwhile (Prefetch); other kernels take one chunk at a time.
            bool ahead = Prefetch && Q8Tile == Q8BatchKernel.DequantizedF32;
            int c = Interlocked.Increment(ref Next) - 1;
            while (c < Chunks)
            {
                int following = ahead ? Interlocked.Increment(ref Next) - 1 : -1;
                ref readonly var target = ref Targets[TargetOf(c)];
                int r0 = (c - target.FirstChunk) * ChunkRows;
                int r1 = Math.Min(r0 + ChunkRows, target.Rows);
                float* scratch = owner._workerScratch[worker].Ptr;
                if (target.Type == GgmlType.Q8_0 && Q8Tile is { } q8)
                {
                    if (q8 == Q8BatchKernel.DequantizedF32)
                    {
                        byte* next = null;
                        long nextBytes = 0;
                        if ((uint)following < (uint)Chunks)
                        {
                            ref readonly var nt = ref Targets[TargetOf(following)];
                            int n0 = (following - nt.FirstChunk) * ChunkRows;
                            next = nt.W + n0 * nt.RowBytes;
                            nextBytes = (Math.Min(n0 + ChunkRows, nt.Rows) - n0) * nt.RowBytes;
                        }
                        Q8_0DequantizedTileKernels.MatRows(target.W, target.RowBytes, r0, r1, Xf, Cols, N, target.Y, target.Rows, scratch, next, nextBytes);
                    }
                    else if (q8 == Q8BatchKernel.Int16Avx512)
                        Q8_0Avx512TileKernels.MatRows(target.W, target.RowBytes, r0, r1, Xq, Xd, Cols, N, target.Y, target.Rows, scratch);
                    else
                        Q8_0TileKernels.MatRows(target.W, target.RowBytes, r0, r1, Xq, Xd, Cols, N, target.Y, target.Rows, scratch);
                }
                else if (target.Type == GgmlType.Q8_0)
                    Q8_0Kernels.MatRows(owner.Path, target.W, target.RowBytes, r0, r1, Xq, Xd, Cols, N, target.Y, target.Rows,
                                        owner._workerScratch[worker].Ptr);
                else if (Tiled)
                    FloatTileKernels.MatRows(target.Type, target.W, target.RowBytes, r0, r1, X, Cols, N, target.Y, target.Rows,
                                             owner._workerScratch[worker].Ptr);
                else
                    FloatKernels.MatRows(owner.Path, target.Type, target.W, target.RowBytes, r0, r1, X, Cols, N, target.Y, target.Rows,
                                         owner._workerScratch[worker].Ptr);
                c = ahead ? following : Interlocked.Increment(ref Next) - 1;
            }
        }

        private int TargetOf(int chunk)
        {
            int t = 0;
            while (t + 1 < TargetCount && Targets[t + 1].FirstChunk <= chunk) t++;
            return t;
        }
    }

    /// <summary>Activation quantization of a batch, rows taken from a shared counter.</summary>
    private sealed class QuantizeJob(CpuBackend owner) : WorkerPool.Job
    {
        public float* X;
        public sbyte* Xq;
        public float* Xd;
        public float* Xf;     // null unless the dequantized batched kernel runs
        public int N, Cols;
        public int Next;

        public override void Execute(int worker, int workers)
        {
            int j;
            while ((j = Interlocked.Increment(ref Next) - 1) < N) QuantizeActivationRow(owner.Path, X, Cols, Xq, Xd, Xf, j);
        }
    }
}
