using System.Diagnostics.CodeAnalysis;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

/// <summary>
/// <see cref="IComputeBackend"/> on an ILGPU accelerator: CUDA on a GPU, ILGPU's CPU accelerator in
/// tests. Weights are uploaded once in their file type, the KV cache lives on the device, and ops only
/// enqueue kernels: nothing comes back to the host until <see cref="Read"/>. Every launcher is compiled
/// once, here in the constructor (so a PTX failure shows at creation, not mid-generation).
/// Decode (n = 1) passes positions and tokens as kernel scalars, so a step uploads nothing; on CUDA a decode
/// step can also be recorded once and replayed as a graph (<see cref="IDecodeStepReplay"/>, IlgpuBackend.Graphs.cs),
/// where the kernels read the step's token and position from a small device buffer instead.
/// </summary>
public sealed partial class IlgpuBackend : IComputeBackend
{
    private readonly IlgpuDevice _device;
    private readonly bool _ownsDevice;
    private readonly Accelerator _accelerator;
    // Every kernel, copy and memset of this backend goes to this stream. On CUDA it is a stream of our own
    // (non-blocking, so another component's work on the legacy NULL stream neither waits on it nor joins a graph
    // capture on it): ILGPU's default stream is the legacy NULL stream, which CUDA refuses to capture. On the CPU
    // accelerator it is the default stream.
    private readonly AcceleratorStream _stream;
    private readonly bool _ownsStream;
    private readonly int _group;       // threads per group for the row kernels
    private readonly int _warpsPerGroup;
    // Warps of 32 lanes (CUDA; or a CPU device built so): quantizing producers run one thread per element.
    private readonly bool _lanes32;
    // Threads per attention group: up to 256 (4 position slices of a 64-wide head), a multiple of the warp. Not 512:
    // with no launch bounds in ILGPU's PTX, 256 threads are launchable at any register count (256 × 255 < 64K).
    private readonly int _attentionGroup;

    // 1-element placeholders for views a kernel does not read in a given mode.
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _dummyF;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense> _dummyU;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _dummyI;
    private readonly ArrayView<float> _dummyFloat;
    private readonly ArrayView<int> _dummyInt;

    // Scratch, grown on demand (so only during warm-up).
    private MemoryBuffer1D<int, Stride1D.Dense>? _xq;       // [n, cols/4] int: quantized activations
    private MemoryBuffer1D<float, Stride1D.Dense>? _xd;     // [n, cols/32] f32: their scales
    private MemoryBuffer1D<float, Stride1D.Dense>? _scores; // [n, heads, contextLength] f32
    private MemoryBuffer1D<int, Stride1D.Dense>? _ints;     // [n] int: positions or tokens for n > 1
    private readonly Dictionary<(float, int), MemoryBuffer1D<float, Stride1D.Dense>> _ropeFreqs = new();

    // The buffer whose first _quantizedCount elements _xq/_xd (or, _quantizedInH, _hq/_hd) hold in Q8_0, written by a
    // fused producer (RMSNorm, SwiGLU, attention) for the MatMul that follows it; any other op forgets it.
    private DeviceBuffer? _quantizedSource;
    private long _quantizedCount;
    private bool _quantizedInH;

    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _quantize;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _quantizeLanes;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _swiGluQLanes;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<int>, ArrayView<float>, Q8MatParams> _matQ8;

    /// <summary>Every matrix-vector variant that loaded, agreed with the portable kernel and was timed by <c>SelectMatVec</c> (CUDA only), for the GPU benchmark's per-shape comparison.</summary>
    private readonly List<(string Name, Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, Q8MatParams> Kernel)> _matVecVariants = [];
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, FloatMatParams> _matF;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _rmsNorm;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, float> _rmsNormQ;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>> _swiGluQ;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, RopeParams> _rope;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, long> _kvStore;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, RopeStoreParams> _ropeStore;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams> _attention;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams> _attentionSplit;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, AttentionParams> _attentionCombine;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swiGlu;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>> _add;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int> _addBias;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, ArrayView<float>, int, int, int, int> _embed;

    /// <summary>Creates the backend on <paramref name="device"/>; disposing the backend disposes the device when <paramref name="ownsDevice"/>.</summary>
    public IlgpuBackend(IlgpuDevice device, bool ownsDevice = true)
    {
        _device = device;
        _ownsDevice = ownsDevice;
        _accelerator = device.Accelerator;
        _group = device.GroupSize;
        _warpsPerGroup = _group / _accelerator.WarpSize;
        _lanes32 = _accelerator.WarpSize % 32 == 0 && _group % 32 == 0;
        _attentionGroup = Math.Min(256, _accelerator.MaxNumThreadsPerGroup);
        _attentionGroup -= _attentionGroup % _accelerator.WarpSize;
        _ownsStream = device.IsCuda;
        _stream = device.IsCuda ? _accelerator.CreateStream() : _accelerator.DefaultStream;
        InitGraphs();
        _dummyF = _accelerator.Allocate1D<float>(1);
        _dummyU = _accelerator.Allocate1D<ushort>(1);
        _dummyI = _accelerator.Allocate1D<int>(1);
        _dummyFloat = _dummyF.View;
        _dummyInt = _dummyI.View;

        var a = _accelerator;
        _quantize = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(QuantizeQ8_0Kernel.Kernel);
        _quantizeLanes = a.LoadKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(QuantizeQ8_0Kernel.KernelLanes);
        _swiGluQLanes = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(SwiGluQuantizeKernel.KernelLanes);
        _matQ8 = a.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, Q8MatParams>(MatVecQ8_0Kernel.Kernel);
        (_matQ8, MatVecPath) = device.IsCuda ? SelectMatVec(_matQ8) : (_matQ8, "portable int8 arithmetic (not CUDA)");
        _matF = a.LoadKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, FloatMatParams>(MatVecFloatKernel.Kernel);
        _rmsNorm = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RmsNormKernel.Kernel);
        _rmsNormQ = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, float>(RmsNormKernel.KernelQuantize);
        _swiGluQ = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>>(SwiGluQuantizeKernel.Kernel);
        _rope = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, RopeParams>(RopeKernel.Kernel);
        _kvStore = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, long>(KvStoreKernel.Kernel);
        _ropeStore = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, RopeStoreParams>(RopeKernel.KernelWithKvStore);
        _attention = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(AttentionKernel.Kernel);
        _attentionSplit = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(AttentionKernel.SplitKernel);
        _attentionCombine = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, AttentionParams>(AttentionKernel.CombineKernel);
        _swiGlu = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SwiGluKernel.Kernel);
        _add = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(AddKernel.Kernel);
        _addBias = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(AddBiasKernel.Kernel);
        _embed = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, ArrayView<float>, int, int, int, int>(EmbedKernel.Kernel);
        InitBatch(); // KV pool and batched attention (IlgpuBackend.Batch.cs)
        InitFusion(); // last: on CUDA it checks the folds with the backend's own ops
    }

    /// <summary>
    /// Opens CUDA and builds the backend there. On any failure (no GPU, old driver, PTX compile error,
    /// out of memory) returns false with a one-line reason so the caller can fall back to a CPU backend.
    /// </summary>
    public static bool TryCreateCuda([NotNullWhen(true)] out IlgpuBackend? backend, out string reason)
    {
        backend = null;
        if (!IlgpuDevice.TryCreateCuda(out var device, out reason)) return false;
        try
        {
            backend = new IlgpuBackend(device!);
            return true;
        }
        catch (Exception e)
        {
            device!.Dispose();
            reason = $"CUDA kernels failed to load: {e.GetType().Name}: {e.Message}";
            return false;
        }
    }

    /// <summary>A backend on ILGPU's CPU accelerator (tests; slow).</summary>
    public static IlgpuBackend CreateCpu() => new(IlgpuDevice.CreateCpu());

    /// <summary>CUDA when usable, else the ILGPU CPU accelerator; one line naming the device goes to <paramref name="log"/> (stderr by default).</summary>
    public static IlgpuBackend Create(TextWriter? log = null)
    {
        log ??= Console.Error;
        if (TryCreateCuda(out var gpu, out var reason))
        {
            log.WriteLine($"ilgpu: {gpu!.Device.Description}");
            return gpu;
        }
        var cpu = CreateCpu();
        log.WriteLine($"ilgpu: {cpu.Device.Description} ({reason})");
        return cpu;
    }

    public string Name => _device.IsCuda ? $"ilgpu-cuda: {_accelerator.Name}" : "ilgpu-cpu";

    /// <summary>The device this backend runs on.</summary>
    public IlgpuDevice Device => _device;

    /// <summary>Which Q8_0 matrix-vector kernel runs, with the timings that chose it on CUDA (see <c>SelectMatVec</c>).</summary>
    public string MatVecPath { get; }

    /// <summary>
    /// Chooses the Q8_0 matrix-vector kernel on CUDA: each candidate (the portable <see cref="MatVecQ8_0Kernel.Kernel"/>,
    /// <see cref="MatVecQ8_0Kernel.KernelDp4a"/> with inline PTX, the pairs forms, <see cref="MatVecQ8_0Kernel.KernelStaged"/>,
    /// the wide forms of MatVecQ8_0Wide.cs: 8-byte-aligned 64-bit weight loads)
    /// is loaded, checked against the portable kernel on a 4096 × 2048 random product (within
    /// <see cref="MatVecSelectionTolerance"/>: the variants may sum in another order), then timed on a 32768 × 2048
    /// product (71 MB: the same rows tiled 8 times, larger than the 50 MB L2 of H100/H200, so that every launch reads
    /// DRAM as a decode step does; GPU time between events when the driver's event calls load, else wall clock); the
    /// fastest that loads and agrees is kept. A driver that rejects a variant's PTX, or a variant that disagrees, costs
    /// speed, not the backend. On H200 (2026-11-26) the dp4a variant measured 26 % of copy bandwidth, slower than the
    /// previous portable kernel (41 %): hence a timed choice instead of a fixed preference. (Runs 3–5 timed on the 9 MB
    /// product alone, which repeated launches read from L2: the five variants came out within 12 % of each other.)
    /// </summary>
    private (Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<int>, ArrayView<float>, Q8MatParams>, string) SelectMatVec(
        Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, Q8MatParams> portable)
    {
        var candidates = new List<(string Name, Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, Q8MatParams> Kernel)> { ("portable", portable) };
        var notes = new List<string>();
        void TryLoad(string name, Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<int>, ArrayView<float>, Q8MatParams> entry)
        {
            try
            {
                candidates.Add((name, _accelerator.LoadKernel(entry)));
            }
            catch (Exception e)
            {
                notes.Add($"{name} failed to load: {e.GetType().Name}: {e.Message}");
            }
        }
        TryLoad("dp4a + cvt.f32.f16 (inline PTX)", MatVecQ8_0Kernel.KernelDp4a);
        TryLoad("pairs (two quarter blocks in flight)", MatVecQ8_0Kernel.KernelPairs);
        TryLoad("pairs + dp4a", MatVecQ8_0Kernel.KernelPairsDp4a);
        TryLoad("staged (32-bit row loads through shared memory, dp4a)", MatVecQ8_0Kernel.KernelStaged);
        TryLoad("wide pairs (64-bit aligned loads, dp4a)", MatVecQ8_0Kernel.KernelWide);
        TryLoad("wide four (64-bit aligned loads, four in flight, dp4a)", MatVecQ8_0Kernel.KernelWideFour);
        TryLoad("wide halves (64-bit aligned loads, half blocks, dp4a)", MatVecQ8_0Kernel.KernelWideHalves);
        TryLoad("wide halves pipelined (next pass's loads before this pass's dp4a)", MatVecQ8_0Kernel.KernelWideHalvesPipelined);
        TryLoad("wide halves deep (pipelined, four half blocks a pass)", MatVecQ8_0Kernel.KernelWideHalvesDeep);

        const int rows = 4096, blocks = 64, reps = 30, tiles = 8;
        var random = new Random(12345);
        var w = new ushort[rows * blocks * WeightTypes.Q8BlockUShorts];
        for (int b = 0; b < rows * blocks; b++)
        {
            int at = b * WeightTypes.Q8BlockUShorts;
            w[at] = BitConverter.HalfToUInt16Bits((System.Half)(0.001f + random.NextSingle() * 0.01f));
            for (int j = 1; j < WeightTypes.Q8BlockUShorts; j++) w[at + j] = (ushort)random.Next(0x10000);
        }
        var xq = new int[blocks * 8];
        for (int i = 0; i < xq.Length; i++) xq[i] = random.Next(int.MinValue, int.MaxValue);
        var xd = new float[blocks];
        for (int i = 0; i < xd.Length; i++) xd[i] = 0.001f + random.NextSingle() * 0.01f;
        try
        {
            using var gw = _accelerator.Allocate1D(w);
            using var gq = _accelerator.Allocate1D(xq);
            using var gd = _accelerator.Allocate1D(xd);
            using var y = _accelerator.Allocate1D<float>(rows * tiles);
            var p = new Q8MatParams { Rows0 = rows, Blocks = blocks };
            var config = Config2D(DivUp(rows, _warpsPerGroup), 1);
            // [rows * tiles, blocks * 17] ushort: the checked rows repeated, 71 MB (a different address is all L2 sees).
            var tiled = new ushort[w.Length * tiles];
            for (int i = 0; i < tiles; i++) w.CopyTo(tiled, i * w.Length);
            using var gwBig = _accelerator.Allocate1D(tiled);
            var pBig = new Q8MatParams { Rows0 = rows * tiles, Blocks = blocks };
            var configBig = Config2D(DivUp(rows * tiles, _warpsPerGroup), 1);
            float[]? expected = null;
            var best = (Kernel: portable, Name: "portable", Micros: double.MaxValue);
            var timings = new List<string>();
            foreach (var (name, kernel) in candidates)
            {
                try
                {
                    y.MemSetToZero(_stream);
                    kernel(_stream, config, gw.View, _dummyU.View, _dummyU.View, y.View, _dummyFloat, _dummyFloat, gq.View, gd.View, p);
                    _accelerator.Synchronize();
                    float[] got = y.GetAsArray1D();
                    if (expected is null) expected = got;
                    else
                    {
                        double err = NormalizedError(got, expected);
                        if (!(err <= MatVecSelectionTolerance)) { notes.Add($"{name} differs from portable (normalized error {err:E1})"); continue; }
                    }
                    void Big() => kernel(_stream, configBig, gwBig.View, _dummyU.View, _dummyU.View, y.View, _dummyFloat, _dummyFloat, gq.View, gd.View, pBig);
                    for (int i = 0; i < 3; i++) Big();
                    _accelerator.Synchronize();
                    double micros;
                    if (GpuSecondsEager(Big, reps) is double gpu) micros = gpu * 1e6;
                    else
                    {
                        var sw = System.Diagnostics.Stopwatch.StartNew();
                        for (int i = 0; i < reps; i++) Big();
                        _accelerator.Synchronize();
                        micros = sw.Elapsed.TotalMicroseconds / reps;
                    }
                    timings.Add($"{name} {micros:F1} µs");
                    _matVecVariants.Add((name, kernel));
                    if (micros < best.Micros) best = (kernel, name, micros);
                }
                catch (Exception e)
                {
                    notes.Add($"{name} failed: {e.GetType().Name}: {e.Message}");
                }
            }
            string detail = string.Join(", ", timings) + (notes.Count > 0 ? "; " + string.Join("; ", notes) : "");
            return (best.Kernel, $"{best.Name} (fastest at {rows * tiles}x{blocks * 32}: {detail})");
        }
        catch (Exception e)
        {
            return (portable, $"portable (selection failed: {e.GetType().Name}: {e.Message})");
        }
    }

    /// <summary>How far a matrix-vector variant may differ from the portable kernel (summation order only).</summary>
    internal const double MatVecSelectionTolerance = 1e-5;

    private static double NormalizedError(float[] actual, float[] expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>Kernels launched so far (for launches-per-token figures).</summary>
    public long KernelLaunches { get; private set; }

    /// <summary>Waits for all enqueued work (launching deferred work first: IlgpuBackend.Fusion.cs).</summary>
    public void Synchronize()
    {
        FlushPending();
        _accelerator.Synchronize();
    }

    public void Embed(DeviceWeight table, ReadOnlySpan<int> tokens, DeviceBuffer dst)
    {
        FlushPending();
        var t = W(table);
        int n = tokens.Length;
        if (n == 0) return;
        foreach (int token in tokens)
            if ((uint)token >= (uint)t.Rows) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {token} outside vocabulary of {t.Rows}");
        var y = V(dst);
        CheckLength(y, (long)n * t.Cols, nameof(dst));
        int token0 = tokens[0];
        var ids = n > 1 ? Upload(tokens) : _stepOnDevice ? StepToken(t.Rows) : _dummyInt;
        if (n == 1 && _stepOnDevice) token0 = -1; // the kernel reads the replayed step's token from the device
        Forget();
        if (Launch())
            _embed(_stream, n * t.Cols, t.F32, t.U16, ids, y, token0, n, t.Cols, t.TypeCode);
    }

    public void RmsNorm(DeviceBuffer x, DeviceWeight weight, DeviceBuffer dst, int n, int dim, float eps)
    {
        var w = W(weight);
        if (w.Rows != 1 || w.Cols != dim) throw new ArgumentException($"norm weight {w} does not match dim {dim}", nameof(weight));
        var xv = V(x);
        var yv = V(dst);
        CheckLength(xv, (long)n * dim, nameof(x));
        CheckLength(yv, (long)n * dim, nameof(dst));
        FlushPending();
        if (n == 0) return;
        if (TryDeferNorm(x, w, dst, n, dim, eps)) return; // folded into the product that reads dst, if one does
        LaunchRmsNorm(xv, w, dst, n, dim, eps, remember: true);
    }

    private void LaunchRmsNorm(ArrayView<float> xv, GpuWeight w, DeviceBuffer dst, int n, int dim, float eps, bool remember)
    {
        var yv = V(dst);
        Forget();
        bool enqueue = Launch();
        if (dim % 32 == 0)
        {
            // Fused: the output rows also go to Q8_0 for the matrix product that normally follows.
            var xq = Scratch(ref _xq, (long)n * dim / 4);
            var xd = Scratch(ref _xd, (long)n * dim / 32);
            if (enqueue) _rmsNormQ(_stream, new KernelConfig(n, _group), xv, w.Vector, yv, xq, xd, dim, eps);
            if (remember) Remember(dst, (long)n * dim);
        }
        else if (enqueue)
        {
            _rmsNorm(_stream, new KernelConfig(n, _group), xv, w.Vector, yv, dim, eps);
        }
    }

    public void MatMul(DeviceBuffer x, int n, ReadOnlySpan<MatMulTarget> targets)
    {
        if (targets.Length == 0 || n == 0) return;
        int cols = targets[0].Weight.Cols;
        var xv = V(x);
        CheckLength(xv, (long)n * cols, nameof(x));
        bool anyQ8 = false;
        foreach (var t in targets)
        {
            if (t.Weight.Cols != cols) throw new ArgumentException($"targets differ in columns: {t.Weight} vs {cols}", nameof(targets));
            long needed = (long)n * t.Weight.Rows, have = V(t.Output).Length;
            if (have < needed) throw new ArgumentException($"output of {t.Weight.Name}: buffer of {have} elements, {needed} needed", nameof(targets));
            anyQ8 |= t.Weight.Type == GgmlType.Q8_0;
        }
        if (TryFuseMatMul(x, n, targets, cols)) return; // IlgpuBackend.Fusion.cs
        FlushPending();

        if (anyQ8)
        {
            int blocks = cols / 32;
            var (xq, xd) = QuantizedInput(x, xv, n, cols);

            // Up to three Q8_0 targets per launch.
            Span<int> pending = stackalloc int[3];
            int count = 0;
            for (int i = 0; i < targets.Length; i++)
            {
                if (targets[i].Weight.Type != GgmlType.Q8_0) continue;
                pending[count++] = i;
                if (count == 3) { LaunchQ8(targets, pending[..count], xq, xd, n, blocks); count = 0; }
            }
            if (count > 0) LaunchQ8(targets, pending[..count], xq, xd, n, blocks);
        }

        foreach (var t in targets)
        {
            if (t.Weight.Type == GgmlType.Q8_0) continue;
            var w = W(t.Weight);
            var p = new FloatMatParams { Rows = w.Rows, Cols = cols, Type = w.TypeCode };
            if (Launch())
                _matF(_stream, Config2D(DivUp(w.Rows, _warpsPerGroup), n), w.F32, w.U16, xv, V(t.Output), p);
        }
        Forget(); // the outputs were written
    }

    /// <summary>
    /// The Q8_0 form of <paramref name="x"/> <c>[n, cols]</c> for the products: xq <c>[n, cols/4]</c> int, xd <c>[n, cols/32]</c> f32;
    /// quantized here unless the op that wrote x (a fused producer) already did.
    /// </summary>
    private (ArrayView<int> Xq, ArrayView<float> Xd) QuantizedInput(DeviceBuffer x, ArrayView<float> xv, int n, int cols)
    {
        int blocks = cols / 32;
        if (_quantizedInH && ReferenceEquals(x, _quantizedSource) && _quantizedCount == (long)n * cols)
            return (Scratch(ref _hq, (long)n * cols / 4), Scratch(ref _hd, (long)n * blocks)); // the fused SwiGLU's output
        var xq = Scratch(ref _xq, (long)n * cols / 4);
        var xd = Scratch(ref _xd, (long)n * blocks);
        if (!ReferenceEquals(x, _quantizedSource) || _quantizedCount != (long)n * cols)
        {
            if (Launch())
            {
                if (_lanes32) _quantizeLanes(_stream, new KernelConfig(DivUp(n * cols, _group), _group), xv, xq, xd, n * cols);
                else _quantize(_stream, n * blocks, xv, xq, xd, cols);
            }
        }
        return (xq, xd);
    }

    /// <summary>
    /// <c>residual [n, rows] += x · Wᵀ</c>: for a Q8_0 weight the product is added by the matvec kernel itself
    /// (one launch, no add); other types take MatMul into <c>target.Output</c> then Add.
    /// </summary>
    public void MatMulAdd(DeviceBuffer x, int n, MatMulTarget target, DeviceBuffer residual)
    {
        if (n == 0) return;
        FlushPending();
        var rv = V(residual);
        if (target.Weight.Type != GgmlType.Q8_0)
        {
            MatMul(x, n, new ReadOnlySpan<MatMulTarget>(in target));
            Add(residual, target.Output, n * target.Weight.Rows);
            return;
        }
        var w = W(target.Weight);
        int cols = w.Cols;
        var xv = V(x);
        CheckLength(xv, (long)n * cols, nameof(x));
        CheckLength(rv, (long)n * w.Rows, nameof(residual));
        var (xq, xd) = QuantizedInput(x, xv, n, cols);
        var p = new Q8MatParams { Rows0 = w.Rows, Blocks = cols / 32, Accumulate = 1 };
        if (Launch())
            _matQ8(_stream, Config2D(DivUp(w.Rows, _warpsPerGroup), n), w.U16, _dummyU.View, _dummyU.View, rv, _dummyFloat, _dummyFloat, xq, xd, p);
        Forget(); // the residual changed
    }

    private void LaunchQ8(ReadOnlySpan<MatMulTarget> targets, ReadOnlySpan<int> which, ArrayView<int> xq, ArrayView<float> xd, int n, int blocks)
    {
        var w0 = W(targets[which[0]].Weight);
        var y0 = V(targets[which[0]].Output);
        var w1 = which.Length > 1 ? W(targets[which[1]].Weight) : null;
        var y1 = which.Length > 1 ? V(targets[which[1]].Output) : _dummyFloat;
        var w2 = which.Length > 2 ? W(targets[which[2]].Weight) : null;
        var y2 = which.Length > 2 ? V(targets[which[2]].Output) : _dummyFloat;
        var p = new Q8MatParams { Rows0 = w0.Rows, Rows1 = w1?.Rows ?? 0, Rows2 = w2?.Rows ?? 0, Blocks = blocks };
        int rows = p.Rows0 + p.Rows1 + p.Rows2;
        if (Launch())
            _matQ8(_stream, Config2D(DivUp(rows, _warpsPerGroup), n), w0.U16, w1?.U16 ?? _dummyU.View, w2?.U16 ?? _dummyU.View, y0, y1, y2, xq, xd, p);
    }

    /// <summary>
    /// Benchmark hook: launches only the Q8_0 product of <paramref name="weight"/> on the input quantized
    /// by the last <see cref="MatMul"/> with the same column count (so its time excludes quantization).
    /// </summary>
    internal void MatVecQ8_0Only(DeviceWeight weight, DeviceBuffer output, int n) => MatVecQ8_0Only(weight, output, n, _matQ8);

    private void MatVecQ8_0Only(DeviceWeight weight, DeviceBuffer output, int n, Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>,
        ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, Q8MatParams> matQ8)
    {
        FlushPending();
        var w = W(weight);
        if (w.Type != GgmlType.Q8_0 || _xq is null || _xd is null) throw new InvalidOperationException("run MatMul with a Q8_0 weight first");
        int blocks = w.Cols / 32;
        var p = new Q8MatParams { Rows0 = w.Rows, Blocks = blocks };
        if (Launch())
            matQ8(_stream, Config2D(DivUp(w.Rows, _warpsPerGroup), n), w.U16, _dummyU.View, _dummyU.View, V(output), _dummyFloat, _dummyFloat,
            _xq.View.SubView(0, (long)n * w.Cols / 4), _xd.View.SubView(0, (long)n * blocks), p);
    }

    /// <summary>Names of the matrix-vector variants <see cref="MatVecQ8_0Only(DeviceWeight, DeviceBuffer, int, int)"/> can launch (index = position); empty off CUDA.</summary>
    internal IReadOnlyList<string> MatVecVariantNames => _matVecVariants.ConvertAll(v => v.Name);

    /// <summary>Benchmark hook: <see cref="MatVecQ8_0Only(DeviceWeight, DeviceBuffer, int)"/> with variant <paramref name="variant"/> of <see cref="MatVecVariantNames"/> instead of the chosen one.</summary>
    internal void MatVecQ8_0Only(DeviceWeight weight, DeviceBuffer output, int n, int variant) =>
        MatVecQ8_0Only(weight, output, n, _matVecVariants[variant].Kernel);

    public void AddBias(DeviceBuffer y, DeviceWeight bias, int n)
    {
        var b = W(bias);
        if (b.Rows != 1) throw new ArgumentException($"bias {b} is not a vector", nameof(bias));
        var yv = V(y);
        CheckLength(yv, (long)n * b.Cols, nameof(y));
        if (n == 0) return;
        FlushPending();
        Forget();
        if (Launch())
            _addBias(_stream, n * b.Cols, yv, b.Vector, b.Cols);
    }

    public void SwiGlu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer dst, int count)
    {
        if (count == 0) return;
        var g = V(gate);
        var u = V(up);
        var d = V(dst);
        CheckLength(g, count, nameof(gate));
        CheckLength(u, count, nameof(up));
        CheckLength(d, count, nameof(dst));
        if (TryFuseSwiGlu(gate, up, dst, count)) return; // the deferred gate/up product's epilogue (IlgpuBackend.Fusion.cs)
        FlushPending();
        Forget();
        bool enqueue = Launch();
        if (count % 32 == 0)
        {
            // Fused: the output also goes to Q8_0 for the down projection that normally follows.
            var xq = Scratch(ref _xq, count / 4);
            var xd = Scratch(ref _xd, count / 32);
            if (enqueue && _lanes32) _swiGluQLanes(_stream, new KernelConfig(DivUp(count, _group), _group), g, u, d, xq, xd, count);
            else if (enqueue) _swiGluQ(_stream, count / 32, g, u, d, xq, xd);
            Remember(dst, count);
        }
        else if (enqueue)
        {
            _swiGlu(_stream, count, g, u, d);
        }
    }

    public void Add(DeviceBuffer x, DeviceBuffer y, int count)
    {
        if (count == 0) return;
        var xv = V(x);
        var yv = V(y);
        CheckLength(xv, count, nameof(x));
        CheckLength(yv, count, nameof(y));
        FlushPending();
        Forget();
        if (Launch())
            _add(_stream, count, xv, yv);
    }

    public void Dispose()
    {
        DisposeFusion();
        _xq?.Dispose();
        _xd?.Dispose();
        _scores?.Dispose();
        _ints?.Dispose();
        DisposeEncoder();
        DisposeBatch();
        foreach (var f in _ropeFreqs.Values) f.Dispose();
        DisposeGraphs();
        _dummyF.Dispose();
        _dummyU.Dispose();
        _dummyI.Dispose();
        if (_ownsStream) _stream.Dispose();
        if (_ownsDevice) _device.Dispose();
    }

    // ---- helpers --------------------------------------------------------------------------------

    /// <summary>Counts a launch; false in <see cref="HostOnly"/> mode, where the caller prepares it but does not enqueue it.</summary>
    private bool Launch()
    {
        if (_normPending || _gateUpPending) FlushPending(remember: false); // an op of another file: deferred work goes first
        KernelLaunches++;
        return !HostOnly;
    }

    /// <summary>
    /// Tests: ops check, count and prepare their launches (views, configs, parameter structs, scratch) but enqueue
    /// nothing, so that the backend's own host cost (its allocations) can be measured apart from the
    /// accelerator's launch path (ILGPU's CPU accelerator allocates about 120 bytes per launch; CUDA's does not).
    /// Results are meaningless while it is set.
    /// </summary>
    internal bool HostOnly { get; set; }

    private void Remember(DeviceBuffer source, long count)
    {
        _quantizedSource = source;
        _quantizedCount = count;
        _quantizedInH = false;
    }

    /// <summary>As <see cref="Remember"/>, with the Q8_0 form in _hq/_hd (the fused SwiGLU's output).</summary>
    private void RememberH(DeviceBuffer source, long count)
    {
        _quantizedSource = source;
        _quantizedCount = count;
        _quantizedInH = true;
    }

    private void Forget() => _quantizedSource = null;

    private KernelConfig Config2D(int groupsX, int groupsY, int groupSize = 0) =>
        new(new Index2D(groupsX, groupsY), new Index2D(groupSize == 0 ? _group : groupSize, 1));

    private static int DivUp(int a, int b) => (a + b - 1) / b;

    private ArrayView<T> Scratch<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length) where T : unmanaged
    {
        if (buffer is null || buffer.Length < length)
        {
            ScratchChanging();
            buffer?.Dispose();
            buffer = _accelerator.Allocate1D<T>(Math.Max(length, 1));
        }
        return buffer.View.SubView(0, length);
    }

    private ArrayView<int> Upload(ReadOnlySpan<int> values)
    {
        var view = Scratch(ref _ints, values.Length);
        view.CopyFromCPU(_stream, values); // synchronous: ordered after the kernels still reading the previous values
        return view;
    }

    private static void CheckLength<T>(ArrayView<T> view, long needed, string name) where T : unmanaged
    {
        if (view.Length < needed) throw new ArgumentException($"{name}: buffer of {view.Length} elements, {needed} needed", name);
    }
}
