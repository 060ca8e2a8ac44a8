using Engine.Core.Backend;
using Engine.Core.Gguf;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Kernels;

// Producer/consumer folding across interface calls. A decode step spends ~5 µs per graph node on an H200 whatever the
// kernel does (bench/RESULTS.md, runs 6–7), so the norm before each product and the SwiGLU after gate/up are folded
// into the products' kernels. The interface keeps them separate calls (RmsNorm, MatMul, SwiGlu), so the backend defers:
// RmsNorm records its arguments instead of launching; a MatMul of its output launches NormMatVecQ8_0Kernel (norm +
// quantize in the prologue); a MatMul of exactly [gate, up] is deferred in turn, and the SwiGlu of its two outputs
// launches GateUpSwiGluKernel (h and its Q8_0 form in the epilogue, which the down projection reads). Anything else
// first flushes the deferred work as the unfused kernels (FlushPending): every op of this file calls it, Launch() calls
// it for any other launch, and Read, Write, Synchronize and the graph code do, so each buffer holds what the unfused
// ops would have left whenever anyone can look. The fused kernels write every buffer the unfused ops write.
public sealed partial class IlgpuBackend
{
    /// <summary>Environment variable: <c>0</c> keeps RMSNorm a launch of its own (backends created afterwards; A/B runs).</summary>
    public const string FusedNormVariable = "ENGINE_FUSED_NORM";

    /// <summary>Environment variable: <c>0</c> keeps SwiGLU a launch of its own after gate/up (backends created afterwards; A/B runs).</summary>
    public const string FusedSwiGluVariable = "ENGINE_FUSED_SWIGLU";

    /// <summary>Environment variable: the widest product input (columns) the folds apply to (<see cref="FoldMaxCols"/>).</summary>
    public const string FoldMaxColsVariable = "ENGINE_FOLD_MAX_COLS";

    /// <summary>Environment variable: the most rows (all targets together) a product may have for the norm before it to fold in (<see cref="FoldNormMaxRows"/>).</summary>
    public const string FoldNormMaxRowsVariable = "ENGINE_FOLD_NORM_MAX_ROWS";

    /// <summary>Environment variable: <c>0</c> keeps the fused kernels' rows on the pairs + dp4a loop instead of the wide one (<see cref="FusedWide"/>).</summary>
    public const string FusedWideVariable = "ENGINE_FUSED_WIDE";

    /// <summary>Environment variable: <c>0</c> runs the fused gate/up kernel in 32-output groups (the form before the spread one; A/B runs).</summary>
    public const string GateUpSpreadVariable = "ENGINE_GATEUP_SPREAD";

    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, NormMatParams>? _normMatQ8;
    private Action<AcceleratorStream, KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, GateUpParams>? _gateUpSwiGlu;
    private Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, GateUpParams>? _normGateUpSwiGlu;
    private MemoryBuffer1D<int, Stride1D.Dense>? _gateUpCounters; // [n, ffn/32] int: the spread form's per-block counts, zero between launches

    private MemoryBuffer1D<int, Stride1D.Dense>? _hq;   // [n, ffn/4] int: the fused SwiGLU's output in Q8_0
    private MemoryBuffer1D<float, Stride1D.Dense>? _hd; // [n, ffn/32] f32: its scales

    private bool _fusedNorm, _fusedSwiGlu;
    private string _fusionStatus = "";
    private bool _gateUpSpread;
    private bool _fusedWide = true;
    private int _foldNormMaxRows = DefaultFoldNormMaxRows;
    private int _foldMaxCols = DefaultFoldMaxCols;

    /// <summary>Default of <see cref="FoldNormMaxRows"/>: q/k/v and a narrow model's gate/up fold, an output head does not.</summary>
    public const int DefaultFoldNormMaxRows = 4096;

    /// <summary>Default of <see cref="FoldMaxCols"/>: SmolLM2-135M's 576-column inputs fold, TinyLlama's 2,048 do not.</summary>
    public const int DefaultFoldMaxCols = 1024;

    // A deferred RmsNorm (x → dst by _normWeight).
    private bool _normPending;
    private DeviceBuffer? _normX, _normDst;
    private GpuWeight? _normWeight;
    private int _normN, _normDim;
    private float _normEps;

    // A deferred MatMul of x by [gate, up] (with the deferred norm folded in when _gateUpNorm).
    private bool _gateUpPending, _gateUpNorm;
    private DeviceBuffer? _gateUpX, _gateOut, _upOut;
    private GpuWeight? _gateWeight, _upWeight;
    private int _gateUpN;

    /// <summary>
    /// Whether an RMSNorm whose output feeds a Q8_0 product (up to three weights, or gate/up) runs inside that product's
    /// launch (<see cref="NormMatVecQ8_0Kernel"/>, <see cref="GateUpSwiGluKernel.KernelNorm"/>): one launch fewer per norm.
    /// Initially on unless <see cref="FusedNormVariable"/> is <c>0</c> or the fused kernels did not load or failed the
    /// start-up check on CUDA (<see cref="FusionStatus"/>); takes effect at the next op.
    /// </summary>
    public bool FusedNorm
    {
        get => _fusedNorm;
        set
        {
            FlushPending();
            _fusedNorm = value && _normMatQ8 is not null;
        }
    }

    /// <summary>
    /// Whether SwiGLU (and its Q8_0 quantization) runs in the epilogue of the gate/up product (<see cref="GateUpSwiGluKernel"/>)
    /// when the feed-forward width is a multiple of 32: one launch fewer per layer. Initially on unless
    /// <see cref="FusedSwiGluVariable"/> is <c>0</c> or the kernels are unavailable (<see cref="FusionStatus"/>).
    /// </summary>
    public bool FusedSwiGlu
    {
        get => _fusedSwiGlu;
        set
        {
            FlushPending();
            _fusedSwiGlu = value && _gateUpSwiGlu is not null;
        }
    }

    /// <summary>
    /// Whether the folded kernels quantize a thread per element with warp shuffles (<see cref="NormMatParams.Lanes"/>): on
    /// CUDA and the CUDA-shaped CPU device (<see cref="IlgpuDevice.IsCudaShaped"/>); off on the other CPU devices, which pay a
    /// barrier per shuffle (tests turn it on for 32-lane CPU warps to run CUDA's path). Needs warps and groups of a multiple of 32 lanes.
    /// </summary>
    internal bool FoldLanes
    {
        get => _foldLanes;
        set => _foldLanes = value && _lanes32;
    }

    private bool _foldLanes;

    /// <summary>Threads per group of the row kernels (RMSNorm, the products, the folded norm's sum of squares).</summary>
    public int GroupSize => _group;

    /// <summary>
    /// Whether the fused gate/up kernel runs spread (<see cref="GateUpParams.Outputs"/>: one output per warp, the block's last
    /// group quantizing it) rather than in 32-output groups. On unless <see cref="GateUpSpreadVariable"/> is <c>0</c> or the
    /// group's warps do not divide 32 (then the 32-output form runs).
    /// </summary>
    public bool GateUpSpread
    {
        get => _gateUpSpread;
        set
        {
            FlushPending();
            _gateUpSpread = value;
        }
    }

    /// <summary>
    /// The most rows (all targets of the product together; gate/up counts both) that a product may have for the RMSNorm
    /// before it to fold into its kernel. Every group of a folded kernel normalizes the whole input row itself, so the
    /// prologue is paid once per group: cheap for q/k/v (320 groups at TinyLlama's widths), dear for an output head of
    /// 32,000 rows (4,000 groups). <see cref="DefaultFoldNormMaxRows"/> unless <see cref="FoldNormMaxRowsVariable"/> says otherwise.
    /// Measured on an H200 (bench/RESULTS.md, sixth session): SmolLM2-135M shape 784 tok/s with no limit, 809 at 4,096, 803 at 16,384.
    /// </summary>
    public int FoldNormMaxRows
    {
        get => _foldNormMaxRows;
        set
        {
            FlushPending();
            _foldNormMaxRows = Math.Max(0, value);
        }
    }

    /// <summary>
    /// The widest product input (columns) that either fold applies to: products of wider rows take the unfused kernels.
    /// A decode step of a narrow model is many small kernels, where a node less pays; with wide rows the products dominate,
    /// and there the unfused kernels (the start-up-selected matrix-vector variant over many balanced groups, no prologue per
    /// group) measured faster: TinyLlama-1.1B shape on an H200, folds off 609 tok/s against 579 on (592–597 with the norm
    /// limited by rows), SmolLM2-135M shape 747 off against 809 on (bench/RESULTS.md, sixth session).
    /// <see cref="DefaultFoldMaxCols"/> unless <see cref="FoldMaxColsVariable"/> says otherwise.
    /// </summary>
    public int FoldMaxCols
    {
        get => _foldMaxCols;
        set
        {
            FlushPending();
            _foldMaxCols = Math.Max(0, value);
        }
    }

    /// <summary>
    /// Whether the fused kernels take their rows by the wide loop (64-bit aligned weight loads, as the "wide halves" matrix-vector
    /// variant that the start-up selection picked on the H200; gate/up by the bit-equal wide pair form). On unless
    /// <see cref="FusedWideVariable"/> is <c>0</c>; rows of a number of blocks not a multiple of 4 take the narrow loop anyway.
    /// </summary>
    public bool FusedWide
    {
        get => _fusedWide;
        set
        {
            FlushPending();
            _fusedWide = value;
        }
    }

    /// <summary>
    /// Outputs per group of the fused gate/up kernel for <paramref name="n"/> input rows: the warps of a group in the spread
    /// form, else 32. Spread for one row only: with n rows the grid already has n times the groups, and each group pays
    /// the folded norm's prologue (16 streams' steps measured 4.0× one stream spread against 5.05× in 32-output groups, H200).
    /// </summary>
    private int GateUpOutputs(int n = 1) => _gateUpSpread && n == 1 && _warpsPerGroup < GateUpSwiGluKernel.Width && GateUpSwiGluKernel.Width % _warpsPerGroup == 0
        ? _warpsPerGroup : GateUpSwiGluKernel.Width;

    /// <summary>Tests: the spread form's per-block counters as they are now (empty before its first launch).</summary>
    internal int[] GateUpCounterValues()
    {
        FlushPending();
        if (_gateUpCounters is null) return [];
        _stream.Synchronize();
        return _gateUpCounters.GetAsArray1D();
    }

    /// <summary>The spread form's per-block counters, zeroed when (re)allocated; each launch leaves them at zero.</summary>
    private ArrayView<int> GateUpCounters(long blocks)
    {
        if (_gateUpCounters is null || _gateUpCounters.Length < blocks)
        {
            ScratchChanging();
            _gateUpCounters?.Dispose();
            _gateUpCounters = _accelerator.Allocate1D<int>(Math.Max(1, blocks));
            _gateUpCounters.MemSetToZero(_stream);
        }
        return _gateUpCounters.View.SubView(0, blocks);
    }

    /// <summary>One line: which folds are on, and why one is off.</summary>
    public string FusionStatus =>
        $"norm {(_fusedNorm ? "on" : "off")}, swiglu {(_fusedSwiGlu ? (GateUpOutputs() < GateUpSwiGluKernel.Width ? "on (spread for one row)" : "on") : "off")}"
        + (_fusedNorm || _fusedSwiGlu ? $"; inputs <= {Limit(_foldMaxCols)} columns, norm into <= {Limit(_foldNormMaxRows)} rows; {(_fusedWide ? "wide" : "pairs")} row loop" : "") + (_fusionStatus.Length > 0 ? $" ({_fusionStatus})" : "");

    private static string Limit(int value) => value == int.MaxValue ? "any" : value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private void InitFusion()
    {
        var a = _accelerator;
        try
        {
            _normMatQ8 = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, NormMatParams>(NormMatVecQ8_0Kernel.Kernel);
            _gateUpSwiGlu = a.LoadKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, GateUpParams>(GateUpSwiGluKernel.Kernel);
            _normGateUpSwiGlu = a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, GateUpParams>(GateUpSwiGluKernel.KernelNorm);
        }
        catch (Exception e) when (_device.IsCuda)
        {
            // A driver that rejects the fused kernels costs launches, not the backend.
            _normMatQ8 = null;
            _gateUpSwiGlu = null;
                _normGateUpSwiGlu = null;
            _fusionStatus = $"fused kernels failed to load: {e.GetType().Name}: {e.Message}";
            return;
        }
        _foldLanes = _device.IsCudaShaped && _lanes32; // CUDA's choice, also on the CUDA-shaped CPU device (tests)
        _gateUpSpread = Environment.GetEnvironmentVariable(GateUpSpreadVariable) != "0";
        _fusedWide = Environment.GetEnvironmentVariable(FusedWideVariable) != "0";
        if (int.TryParse(Environment.GetEnvironmentVariable(FoldNormMaxRowsVariable), out int maxRows)) _foldNormMaxRows = Math.Max(0, maxRows);
        if (int.TryParse(Environment.GetEnvironmentVariable(FoldMaxColsVariable), out int maxCols)) _foldMaxCols = Math.Max(0, maxCols);
        _fusedNorm = Environment.GetEnvironmentVariable(FusedNormVariable) != "0";
        _fusedSwiGlu = Environment.GetEnvironmentVariable(FusedSwiGluVariable) != "0";
        if (_device.IsCuda && (_fusedNorm || _fusedSwiGlu))
        {
            string? failure = CheckFusion();
            if (failure is not null)
            {
                _fusedNorm = _fusedSwiGlu = false;
                _normMatQ8 = null;
                _gateUpSwiGlu = null;
                _normGateUpSwiGlu = null;
                _fusionStatus = "start-up check failed: " + failure;
                Console.Error.WriteLine($"ilgpu: fused norm/SwiGLU kernels disabled: {failure}");
            }
        }
    }

    /// <summary>How far the fused ops' f32 outputs may differ from the unfused ones on the device (the product variants sum in another order).</summary>
    internal const double FusionCheckTolerance = 1e-5;

    /// <summary>
    /// Runs RmsNorm → MatMul(1 and 3 targets) and RmsNorm → MatMul([gate, up]) → SwiGlu, with n = 1 and 2, fused and unfused on
    /// random data and compares every output (the fused kernels, their launch configuration and this backend's deferral, on
    /// the device itself: no GPU runs the unit tests). Null when they agree within <see cref="FusionCheckTolerance"/>, else
    /// what failed. Leaves FusedNorm/FusedSwiGlu as they were.
    /// </summary>
    internal unsafe string? CheckFusion()
    {
        bool norm0 = _fusedNorm, swi0 = _fusedSwiGlu;
        const int dim = 256, ffn = 96, rows = 40, maxN = 2;
        var random = new Random(4242);
        var weights = new List<DeviceWeight>();
        var buffers = new List<DeviceBuffer>();
        try
        {
            DeviceWeight Q8(string name, int r, int c)
            {
                var bytes = new byte[r * c / 32 * WeightTypes.Q8BlockUShorts * 2];
                random.NextBytes(bytes);
                for (int b = 0; b < r * c / 32; b++)
                    BitConverter.TryWriteBytes(bytes.AsSpan(b * 34, 2), BitConverter.HalfToUInt16Bits((System.Half)(0.002f + random.NextSingle() * 0.01f)));
                fixed (byte* p = bytes) { var w = LoadWeight(new Engine.Core.Tensors.TensorView(name, GgmlType.Q8_0, [c, r], p)); weights.Add(w); return w; }
            }
            DeviceWeight F32(string name, int c)
            {
                var f = new float[c];
                for (int i = 0; i < c; i++) f[i] = 0.5f + random.NextSingle();
                fixed (float* p = f) { var w = LoadWeight(new Engine.Core.Tensors.TensorView(name, GgmlType.F32, [c], (byte*)p)); weights.Add(w); return w; }
            }
            DeviceBuffer Buf(int length)
            {
                var b = Allocate(length);
                buffers.Add(b);
                return b;
            }
            var normW = F32("check.norm", dim);
            var wq = Q8("check.q", rows, dim);
            var wk = Q8("check.k", rows / 2, dim);
            var wv = Q8("check.v", rows / 2, dim);
            var wg = Q8("check.gate", ffn, dim);
            var wu = Q8("check.up", ffn, dim);
            var wd = Q8("check.down", rows, ffn);
            var x = Buf(maxN * dim);
            var host = new float[maxN * dim];
            for (int i = 0; i < host.Length; i++) host[i] = random.NextSingle() * 4 - 2;
            Write(x, host);

            float[][] Run(bool fused, int n)
            {
                _fusedNorm = fused && _normMatQ8 is not null;
                _fusedSwiGlu = fused && _gateUpSwiGlu is not null;
                var xb = Buf(maxN * dim);
                var (q, k, v, one) = (Buf(maxN * rows), Buf(maxN * rows / 2), Buf(maxN * rows / 2), Buf(maxN * rows));
                var (g, u, y) = (Buf(maxN * ffn), Buf(maxN * ffn), Buf(maxN * rows));
                RmsNorm(x, normW, xb, n, dim, 1e-5f);
                MatMul(xb, n, [new(wq, q), new(wk, k), new(wv, v)]);
                RmsNorm(x, normW, xb, n, dim, 1e-5f);
                MatMul(xb, n, [new(wq, one)]);
                RmsNorm(x, normW, xb, n, dim, 1e-5f);
                MatMul(xb, n, [new(wg, g), new(wu, u)]);
                SwiGlu(g, u, g, n * ffn);
                MatMul(g, n, [new(wd, y)]); // reads the fused SwiGLU's quantized h
                var outs = new[] { xb, q, k, v, one, u, g, y };
                var result = new float[outs.Length][];
                for (int i = 0; i < outs.Length; i++)
                {
                    result[i] = new float[outs[i].Length];
                    Read(outs[i], result[i]);
                }
                return result;
            }

            foreach (int n in new[] { 1, maxN })
            {
                var expected = Run(false, n);
                var actual = Run(true, n);
                string[] names = ["normed x", "q", "k", "v", "single product", "up", "silu(gate)·up", "down of h"];
                for (int i = 0; i < expected.Length; i++)
                {
                    double err = NormalizedError(actual[i], expected[i]);
                    if (!(err <= FusionCheckTolerance)) return $"{names[i]} differs at n = {n} (normalized error {err:E1})";
                }
            }
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
        finally
        {
            _normPending = _gateUpPending = false;
            _fusedNorm = norm0;
            _fusedSwiGlu = swi0;
            try { Synchronize(); } catch (Exception) { /* a failed launch surfaces above */ }
            foreach (var b in buffers) b.Dispose();
            foreach (var w in weights) w.Dispose();
        }
    }

    /// <summary>Whether views <paramref name="a"/> and <paramref name="b"/> share memory.</summary>
    private static bool Overlaps(ArrayView<float> a, ArrayView<float> b) =>
        BufferOf(a) == BufferOf(b) && IndexOf(a) < IndexOf(b) + b.Length && IndexOf(b) < IndexOf(a) + a.Length;

    // Through the interfaces (ArrayView implements them explicitly), constrained so that the view is not boxed.
    private static MemoryBuffer BufferOf<T>(T view) where T : struct, IArrayView => view.Buffer;
    private static long IndexOf<T>(T view) where T : struct, IContiguousArrayView => view.Index;

    /// <summary>RmsNorm: defers the norm when it may fold into the product that reads dst. False: run it now.</summary>
    private bool TryDeferNorm(DeviceBuffer x, GpuWeight w, DeviceBuffer dst, int n, int dim, float eps)
    {
        if (!_fusedNorm || dim % 32 != 0 || dim > NormMatVecQ8_0Kernel.MaxCols || Overlaps(V(x), V(dst))) return false;
        Forget(); // dst is as good as written
        (_normPending, _normX, _normWeight, _normDst, _normN, _normDim, _normEps) = (true, x, w, dst, n, dim, eps);
        return true;
    }

    /// <summary>Whether the deferred norm wrote exactly <paramref name="x"/> [n, cols], the input of a product.</summary>
    private bool NormPendingFor(DeviceBuffer x, int n, int cols) =>
        _normPending && ReferenceEquals(x, _normDst) && n == _normN && cols == _normDim;

    /// <summary>
    /// MatMul: folds into the product what can be folded (a deferred norm of x; the SwiGlu that may follow [gate, up]).
    /// True when the product was launched fused or deferred; false: flush and run the unfused path.
    /// </summary>
    private bool TryFuseMatMul(DeviceBuffer x, int n, ReadOnlySpan<MatMulTarget> targets, int cols)
    {
        if (_gateUpPending) FlushPending(); // a product after a deferred gate/up (no norm is pending then): that one first
        long rowsTotal = 0;
        foreach (var t in targets) rowsTotal += t.Weight.Rows;
        if (cols > _foldMaxCols) return false;
        bool norm = NormPendingFor(x, n, cols) && rowsTotal <= _foldNormMaxRows;
        if (!norm && !_fusedSwiGlu) return false;
        if (targets.Length > 3) return false;
        foreach (var t in targets)
        {
            if (t.Weight.Type != GgmlType.Q8_0) return false;
            var y = V(t.Output);
            if (Overlaps(y, V(x)) || (norm && Overlaps(y, V(_normX!)))) return false;
        }
        if (_fusedSwiGlu && targets.Length == 2 && targets[0].Weight.Rows == targets[1].Weight.Rows
            && targets[0].Weight.Rows % GateUpSwiGluKernel.Width == 0 && cols <= NormMatVecQ8_0Kernel.MaxCols
            && !Overlaps(V(targets[0].Output), V(targets[1].Output)))
        {
            // Gate/up: wait for the SwiGlu of the two outputs (or any other op: then the product alone). A pending norm that
            // does not fold in (another input, or a product past FoldNormMaxRows) runs now.
            if (!norm && _normPending) FlushPending();
            _normPending = false;
            (_gateUpPending, _gateUpNorm, _gateUpX, _gateUpN) = (true, norm, x, n);
            (_gateWeight, _upWeight, _gateOut, _upOut) = (W(targets[0].Weight), W(targets[1].Weight), targets[0].Output, targets[1].Output);
            return true;
        }
        if (!norm) return false;
        _normPending = false;
        var w0 = W(targets[0].Weight);
        var w1 = targets.Length > 1 ? W(targets[1].Weight) : null;
        var w2 = targets.Length > 2 ? W(targets[2].Weight) : null;
        LaunchNormMatVec(w0, V(targets[0].Output), w1, targets.Length > 1 ? V(targets[1].Output) : _dummyFloat,
            w2, targets.Length > 2 ? V(targets[2].Output) : _dummyFloat);
        Forget();
        return true;
    }

    /// <summary>The deferred norm (which the caller has just cleared) folded into a product of up to three weights.</summary>
    private void LaunchNormMatVec(GpuWeight w0, ArrayView<float> y0, GpuWeight? w1, ArrayView<float> y1, GpuWeight? w2, ArrayView<float> y2)
    {
        var p = new NormMatParams
        {
            Rows0 = w0.Rows, Rows1 = w1?.Rows ?? 0, Rows2 = w2?.Rows ?? 0, Blocks = _normDim / 32, Eps = _normEps, Lanes = _foldLanes ? 1 : 0,
            NormThreads = _group, Wide = _fusedWide ? 1 : 0,
        };
        int rows = p.Rows0 + p.Rows1 + p.Rows2;
        if (Launch())
            _normMatQ8!(_stream, Config2D(DivUp(rows, _warpsPerGroup), _normN), V(_normX!), _normWeight!.Vector, V(_normDst!),
                w0.U16, w1?.U16 ?? _dummyU.View, w2?.U16 ?? _dummyU.View, y0, y1, y2, p);
    }

    /// <summary>SwiGlu: true when it completed the deferred gate/up product (one launch, h quantized for the down projection).</summary>
    private bool TryFuseSwiGlu(DeviceBuffer gate, DeviceBuffer up, DeviceBuffer dst, int count)
    {
        if (!_gateUpPending || !ReferenceEquals(gate, _gateOut) || !ReferenceEquals(up, _upOut)) return false;
        int rows = _gateWeight!.Rows, n = _gateUpN;
        var d = V(dst);
        if (count != n * rows || d.Length < count) return false;
        d = d.SubView(0, count);
        if (Overlaps(d, V(_gateUpX!)) || (_gateUpNorm && (Overlaps(d, V(_normX!)) || Overlaps(d, V(_normDst!))))) return false;
        _gateUpPending = false;
        var hq = Scratch(ref _hq, (long)count / 4);
        var hd = Scratch(ref _hd, (long)count / 32);
        int outputs = GateUpOutputs(n);
        var p = new GateUpParams { Rows = rows, Blocks = _gateWeight.Cols / 32, Eps = _normEps, Lanes = _foldLanes ? 1 : 0, Outputs = outputs, NormThreads = _group, Wide = _fusedWide ? 1 : 0 };
        var config = Config2D(rows / outputs, n);
        var counters = GateUpCounters((long)n * rows / GateUpSwiGluKernel.Width);
        var (wg, wu, yg, yu) = (_gateWeight.U16, _upWeight!.U16, V(_gateOut!), V(_upOut!));
        if (_gateUpNorm)
        {
            if (Launch())
                _normGateUpSwiGlu!(_stream, config, V(_normX!), _normWeight!.Vector, V(_normDst!), wg, wu, yg, yu, d, hq, hd, counters, p);
        }
        else
        {
            var (xq, xd) = QuantizedInput(_gateUpX!, V(_gateUpX!), n, _gateWeight.Cols);
            if (Launch())
                _gateUpSwiGlu!(_stream, config, wg, wu, yg, yu, d, hq, hd, xq, xd, counters, p);
        }
        RememberH(dst, count);
        return true;
    }

    /// <summary>
    /// Launches deferred work as the unfused kernels: a deferred gate/up product (with its norm folded in, or after the
    /// quantize of its input), or a deferred norm (RmsNorm + quantize, remembered for a MatMul of dst when
    /// <paramref name="remember"/>). Called before any op that is not the deferred work's consumer.
    /// </summary>
    private void FlushPending(bool remember = true)
    {
        if (_gateUpPending)
        {
            _gateUpPending = false;
            var (w0, w1, y0, y1) = (_gateWeight!, _upWeight!, V(_gateOut!), V(_upOut!));
            if (_gateUpNorm)
            {
                LaunchNormMatVec(w0, y0, w1, y1, null, _dummyFloat);
            }
            else
            {
                int cols = w0.Cols;
                var (xq, xd) = QuantizedInput(_gateUpX!, V(_gateUpX!), _gateUpN, cols);
                var p = new Q8MatParams { Rows0 = w0.Rows, Rows1 = w1.Rows, Blocks = cols / 32 };
                if (Launch())
                    _matQ8(_stream, Config2D(DivUp(w0.Rows + w1.Rows, _warpsPerGroup), _gateUpN), w0.U16, w1.U16, _dummyU.View, y0, y1, _dummyFloat, xq, xd, p);
            }
            Forget();
        }
        if (_normPending)
        {
            _normPending = false;
            LaunchRmsNorm(V(_normX!), _normWeight!, _normDst!, _normN, _normDim, _normEps, remember);
        }
    }

    private void DisposeFusion()
    {
        _normPending = _gateUpPending = false;
        _hq?.Dispose();
        _hd?.Dispose();
        _gateUpCounters?.Dispose();
    }
}
