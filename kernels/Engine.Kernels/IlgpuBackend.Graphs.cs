using System.Runtime.ExceptionServices;
using Engine.Core.Backend;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels;

// Decode-step replay with CUDA graphs (IDecodeStepReplay). A decode step of TinyLlama-1.1B is ~180 launches whose
// host enqueue cost (~12.6 µs each through ILGPU's launchers on H200, bench/RESULTS.md) exceeds the GPU work, so the
// step is captured once from our stream into a graph and later steps cost one H2D copy of [token, position] plus
// one cuGraphLaunch. Kernel scalars are baked into a graph, so while recording, n = 1 ops pass a negative
// token/position scalar and their kernels read the values from _stepValues instead (see EmbedKernel, RopeKernel,
// KvStoreKernel, AttentionKernel); every grid is independent of the position (attention: one group per head,
// scores sized by the context length). Graphs hold raw device pointers: any scratch reallocation invalidates them.
// Any CUDA failure while recording or replaying disables graphs for the backend (one log line) and the step runs op
// by op, as it does on the CPU accelerator.
public sealed partial class IlgpuBackend : IDecodeStepReplay
{
    /// <summary>Environment variable: <c>0</c> turns CUDA graph replay off for backends created afterwards (A/B runs).</summary>
    public const string GraphsVariable = "ENGINE_CUDA_GRAPHS";

    private CudaDriver? _driver;
    private bool _graphsEnabled;
    private string _graphStatus = "";
    private readonly HashSet<DecodeStep> _steps = new();

    private MemoryBuffer1D<int, Stride1D.Dense>? _stepValues;        // [2] int on the device: token, position of the step
    private readonly int[] _stepHost = GC.AllocateArray<int>(2, pinned: true); // its host source (pinned: read by an async copy)
    private bool _stepOnDevice;     // n = 1 ops read token/position from _stepValues (recording, or the CPU emulation)
    private bool _capturing;        // between cuStreamBeginCapture and cuStreamEndCapture
    private int _stepTokenLimit;    // while recording: rows of the embedding table the step gathers from
    private int _stepPositionLimit; // while recording: positions of the KV cache the step uses
    private int _scratchGeneration; // bumped whenever scratch or a table is (re)allocated

    /// <summary>
    /// Whether decode steps replay CUDA graphs (CUDA only). Initially on unless <see cref="GraphsVariable"/> is <c>0</c>;
    /// a failure turns it off for good. Setting it takes effect at the next step (benchmarks compare both).
    /// </summary>
    public bool GraphsEnabled
    {
        get => _graphsEnabled;
        set
        {
            if (value && (!_device.IsCuda || _graphStatus.StartsWith("failed", StringComparison.Ordinal))) return;
            _graphsEnabled = value;
        }
    }

    /// <summary>One line: whether graphs are on, and why not.</summary>
    public string GraphStatus => _graphsEnabled ? "on" : _graphStatus.Length > 0 ? _graphStatus : "off";

    /// <summary>Graphs launched so far (one per replayed decode step); the kernels they ran are counted in <see cref="KernelLaunches"/>.</summary>
    public long GraphLaunches { get; private set; }

    private void InitGraphs()
    {
        if (!_device.IsCuda) { _graphStatus = "off (not CUDA)"; return; }
        if (Environment.GetEnvironmentVariable(GraphsVariable) == "0") { _graphStatus = $"off ({GraphsVariable}=0)"; return; }
        _graphsEnabled = true;
    }

    /// <inheritdoc/>
    public IDecodeStep? CreateDecodeStep(Action step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (!_device.IsCuda) return EmulateDecodeSteps ? CreateEmulatedDecodeStep(step) : null;
        return Track(new DecodeStep(this, step, emulate: false));
    }

    /// <summary>Tests: on the CPU accelerator, <see cref="CreateDecodeStep"/> hands out emulated steps (see <see cref="CreateEmulatedDecodeStep"/>).</summary>
    internal bool EmulateDecodeSteps { get; set; }

    /// <summary>
    /// Tests on the CPU accelerator: a decode step that runs its body op by op, but with the token and position read
    /// from the device buffer as a recorded graph reads them (what a replay computes, without CUDA).
    /// </summary>
    internal IDecodeStep CreateEmulatedDecodeStep(Action step) => Track(new DecodeStep(this, step, emulate: true));

    private DecodeStep Track(DecodeStep s)
    {
        _steps.Add(s);
        return s;
    }

    /// <summary>Called before any scratch buffer or table is (re)allocated: recorded graphs would point at freed memory.</summary>
    private void ScratchChanging()
    {
        if (_capturing) throw new CudaGraphException("a scratch buffer had to grow while recording (no allocation may happen inside a graph)");
        _scratchGeneration++;
    }

    /// <summary>n = 1 ops while recording: the token comes from the step buffer; <paramref name="rows"/> bounds it.</summary>
    private ArrayView<int> StepToken(int rows)
    {
        _stepTokenLimit = Math.Min(_stepTokenLimit, rows);
        return _stepValues!.View.SubView(0, 1);
    }

    /// <summary>
    /// Positions view and scalar for an op over <paramref name="n"/> rows: uploaded for n &gt; 1; for n = 1 the scalar
    /// (no upload), or, while recording, the step buffer with a negative scalar so the kernel reads the device value.
    /// </summary>
    private ArrayView<int> PositionsFor(ReadOnlySpan<int> positions, int n, int contextLength, out int position0)
    {
        if (n > 1)
        {
            position0 = positions[0];
            return Upload(positions[..n]);
        }
        if (_stepOnDevice)
        {
            position0 = -1;
            _stepPositionLimit = Math.Min(_stepPositionLimit, contextLength);
            return _stepValues!.View.SubView(1, 1);
        }
        position0 = positions[0];
        return _dummyInt;
    }

    private void EnsureStepValues()
    {
        if (_stepValues is not null) return;
        ScratchChanging();
        _stepValues = _accelerator.Allocate1D<int>(2);
    }

    private CudaDriver? Driver()
    {
        if (_driver is null)
        {
            _driver = CudaDriver.TryLoad(out string reason);
            if (_driver is null) DisableGraphs(reason);
        }
        return _driver;
    }

    private void DisableGraphs(string reason)
    {
        if (_graphStatus.StartsWith("failed", StringComparison.Ordinal)) return;
        _graphsEnabled = false;
        _graphStatus = "failed: " + reason;
        Console.Error.WriteLine($"ilgpu: CUDA graphs disabled, decoding op by op: {reason}");
    }

    private IntPtr StreamPtr => ((CudaStream)_stream).StreamPtr;

    /// <summary>
    /// Records <paramref name="step"/> into a graph and instantiates it. False (graphs disabled, nothing executed) on
    /// any CUDA failure; an argument error of the step itself is rethrown after capture has ended.
    /// </summary>
    private bool TryRecord(Action step, out IntPtr exec, out long kernels, out int tokenLimit, out int positionLimit)
    {
        exec = IntPtr.Zero;
        kernels = 0;
        tokenLimit = positionLimit = 0;
        var d = Driver();
        if (d is null) return false;
        FlushPending(); // earlier ops' deferred work runs now, not in every replay
        using var binding = _accelerator.BindScoped();
        IntPtr stream = StreamPtr;
        long launches0 = KernelLaunches;
        _stepTokenLimit = _stepPositionLimit = int.MaxValue;

        int rc = d.BeginCapture(stream);
        if (rc != CudaDriver.Success)
        {
            DisableGraphs("cuStreamBeginCapture_v2: " + d.Describe(rc));
            return false;
        }
        Exception? failure = null;
        _capturing = _stepOnDevice = true;
        try
        {
            step();
            FlushPending(); // the step's own deferred work belongs in the graph
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            _capturing = _stepOnDevice = false;
        }
        rc = d.EndCapture(stream, out IntPtr graph); // always: the stream leaves capture mode even after a failure
        kernels = KernelLaunches - launches0;
        KernelLaunches = launches0; // recorded, not run: the replay that follows counts them
        Forget();
        try
        {
            if (failure is ArgumentException or ObjectDisposedException)
                ExceptionDispatchInfo.Throw(failure); // the step's own bad input: eager would throw it too
            if (failure is not null) { DisableGraphs($"recording failed: {failure.GetType().Name}: {failure.Message}"); return false; }
            if (rc != CudaDriver.Success || graph == IntPtr.Zero) { DisableGraphs("cuStreamEndCapture: " + d.Describe(rc)); return false; }
            rc = d.Instantiate(graph, out exec);
            if (rc != CudaDriver.Success) { exec = IntPtr.Zero; DisableGraphs("cuGraphInstantiateWithFlags: " + d.Describe(rc)); return false; }
            if (d.NodeCount(graph, out long nodes) == CudaDriver.Success && nodes != kernels)
                Console.Error.WriteLine($"ilgpu: decode graph has {nodes} nodes for {kernels} kernel launches");
            tokenLimit = _stepTokenLimit;
            positionLimit = _stepPositionLimit;
            return true;
        }
        finally
        {
            if (graph != IntPtr.Zero) d.DestroyGraph(graph); // the executable graph does not need it
        }
    }

    /// <summary>Writes [token, position] to the step buffer and launches the graph, both on our stream (so after the previous step).</summary>
    private unsafe void Replay(IntPtr exec, int token, int position, long kernels)
    {
        FlushPending(); // ordered before the graph's kernels
        var d = _driver!;
        using var binding = _accelerator.BindScoped();
        IntPtr stream = StreamPtr;
        _stepHost[0] = token;
        _stepHost[1] = position;
        fixed (int* host = _stepHost)
            d.Check(d.CopyHtoDAsync((ulong)_stepValues!.NativePtr, host, 2 * sizeof(int), stream), "cuMemcpyHtoDAsync_v2");
        d.Check(d.Launch(exec, stream), "cuGraphLaunch");
        KernelLaunches += kernels;
        GraphLaunches++;
        Forget(); // the host's note of what _xq holds predates the graph
    }

    /// <summary>
    /// The CPU emulation of a replay: the step runs op by op with token/position read from the device buffer.
    /// Returns the step's bounds (embedding rows, cache positions).
    /// </summary>
    private (int TokenLimit, int PositionLimit) RunOnDeviceValues(Action step, int token, int position)
    {
        FlushPending();
        EnsureStepValues();
        _stepHost[0] = token;
        _stepHost[1] = position;
        _stepValues!.View.CopyFromCPU(_stream, (ReadOnlySpan<int>)_stepHost);
        _stepTokenLimit = _stepPositionLimit = int.MaxValue;
        _stepOnDevice = true;
        try
        {
            step();
            FlushPending(); // as a recorded graph would: the step's deferred work inside it
        }
        finally
        {
            _stepOnDevice = false;
        }
        return (_stepTokenLimit, _stepPositionLimit);
    }

    /// <summary>The stream every op of this backend is enqueued on (benchmarks launch their probes on it too).</summary>
    internal AcceleratorStream Stream => _stream;

    /// <summary>
    /// Benchmarks (CUDA): GPU seconds per call of <paramref name="enqueue"/> (ops of this backend, no allocation, no
    /// read-back) without host launch gaps: <paramref name="perGraph"/> calls are recorded into one graph, which is
    /// launched <paramref name="replays"/> times between two events. Null, with the reason, when graphs are unavailable.
    /// </summary>
    internal double? GpuSecondsRecorded(Action enqueue, int perGraph, int replays, out string reason)
    {
        reason = "";
        var d = _device.IsCuda ? Driver() : null;
        if (d is null) { reason = _device.IsCuda ? GraphStatus : "not CUDA"; return null; }
        FlushPending();
        _stream.Synchronize();
        using var binding = _accelerator.BindScoped();
        IntPtr stream = StreamPtr, graph = IntPtr.Zero, exec = IntPtr.Zero, start = IntPtr.Zero, end = IntPtr.Zero;
        long launches0 = KernelLaunches;
        try
        {
            d.Check(d.BeginCapture(stream), "cuStreamBeginCapture_v2");
            _capturing = true;
            try
            {
                for (int i = 0; i < perGraph; i++) enqueue();
                FlushPending();
            }
            finally
            {
                _capturing = false;
                int rc = d.EndCapture(stream, out graph);
                if (rc != CudaDriver.Success) reason = "cuStreamEndCapture: " + d.Describe(rc);
            }
            if (graph == IntPtr.Zero) return null;
            d.Check(d.Instantiate(graph, out exec), "cuGraphInstantiateWithFlags");
            d.Check(d.Launch(exec, stream), "cuGraphLaunch"); // warm-up
            d.Check(d.CreateEvent(out start), "cuEventCreate");
            d.Check(d.CreateEvent(out end), "cuEventCreate");
            d.Check(d.Record(start, stream), "cuEventRecord");
            for (int i = 0; i < replays; i++) d.Check(d.Launch(exec, stream), "cuGraphLaunch");
            d.Check(d.Record(end, stream), "cuEventRecord");
            d.Check(d.SynchronizeEvent(end), "cuEventSynchronize");
            d.Check(d.Elapsed(start, end, out float ms), "cuEventElapsedTime");
            return ms * 1e-3 / ((double)perGraph * replays);
        }
        catch (Exception e) when (e is CudaGraphException or ILGPU.Runtime.Cuda.CudaException)
        {
            reason = e.Message;
            return null;
        }
        finally
        {
            KernelLaunches = launches0;
            Forget();
            if (start != IntPtr.Zero) d.DestroyEvent(start);
            if (end != IntPtr.Zero) d.DestroyEvent(end);
            if (exec != IntPtr.Zero) d.DestroyExec(exec);
            if (graph != IntPtr.Zero) d.DestroyGraph(graph);
        }
    }

    /// <summary>
    /// Benchmarks (CUDA): GPU seconds per call of <paramref name="enqueue"/> launched eagerly <paramref name="count"/> times
    /// between two events (includes the idle gaps when the host enqueues more slowly than the GPU runs).
    /// </summary>
    internal double? GpuSecondsEager(Action enqueue, int count)
    {
        var d = _device.IsCuda ? Driver() : null;
        if (d is null) return null;
        enqueue();
        FlushPending();
        _stream.Synchronize();
        using var binding = _accelerator.BindScoped();
        IntPtr stream = StreamPtr, start = IntPtr.Zero, end = IntPtr.Zero;
        try
        {
            d.Check(d.CreateEvent(out start), "cuEventCreate");
            d.Check(d.CreateEvent(out end), "cuEventCreate");
            d.Check(d.Record(start, stream), "cuEventRecord");
            for (int i = 0; i < count; i++) enqueue();
            FlushPending();
            d.Check(d.Record(end, stream), "cuEventRecord");
            d.Check(d.SynchronizeEvent(end), "cuEventSynchronize");
            d.Check(d.Elapsed(start, end, out float ms), "cuEventElapsedTime");
            return ms * 1e-3 / count;
        }
        catch (CudaGraphException)
        {
            return null;
        }
        finally
        {
            if (start != IntPtr.Zero) d.DestroyEvent(start);
            if (end != IntPtr.Zero) d.DestroyEvent(end);
        }
    }

    private void DisposeGraphs()
    {
        foreach (var s in _steps.ToArray()) s.Dispose();
        _stepValues?.Dispose();
    }

    /// <summary>
    /// One decoder's step: warmed up op by op once (scratch reaches its size), then recorded, then replayed while
    /// no scratch buffer has been reallocated since. It is the graph's key: it belongs to one decoder, whose KV cache,
    /// activation buffers and model the graph points at.
    /// </summary>
    private sealed class DecodeStep(IlgpuBackend b, Action step, bool emulate) : IDecodeStep
    {
        private IntPtr _exec;
        private long _kernels;
        // Bounds of the recorded step (embedding rows, cache positions): a replay's values are checked against them,
        // since no op checks them on the host then. Unknown before the first run, whose ops check their own scalars.
        private int _tokenLimit = int.MaxValue, _positionLimit = int.MaxValue;
        private int _generation = -1; // scratch generation of the warm-up or of the graph
        private bool _disposed;

        public void Run(int token, int position)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (emulate)
            {
                CheckLimits(token, position);
                (_tokenLimit, _positionLimit) = b.RunOnDeviceValues(step, token, position);
                return;
            }
            if (!b._graphsEnabled)
            {
                Drop();
                step();
                return;
            }
            try
            {
                b.EnsureStepValues();
                if (_exec != IntPtr.Zero && _generation == b._scratchGeneration)
                {
                    CheckLimits(token, position);
                    b.Replay(_exec, token, position, _kernels);
                    return;
                }
                Drop();
                if (_generation != b._scratchGeneration)
                {
                    // Warm-up op by op: scratch buffers and tables reach their sizes outside any recording.
                    step();
                    _generation = b._scratchGeneration;
                    return;
                }
                if (b.TryRecord(step, out _exec, out _kernels, out _tokenLimit, out _positionLimit))
                {
                    b.Replay(_exec, token, position, _kernels); // recording ran nothing: this step runs now
                    return;
                }
            }
            catch (CudaGraphException e)
            {
                Drop();
                b.DisableGraphs(e.Message);
            }
            step(); // graphs off or failed: op by op
        }

        private void CheckLimits(int token, int position)
        {
            if ((uint)token >= (uint)_tokenLimit || (uint)position >= (uint)_positionLimit)
                throw new ArgumentOutOfRangeException(nameof(position), $"token {token} / position {position} outside the step's {_tokenLimit} rows / {_positionLimit} positions");
        }

        private void Drop()
        {
            if (_exec == IntPtr.Zero) return;
            using (b._accelerator.BindScoped())
                b._driver?.DestroyExec(_exec);
            _exec = IntPtr.Zero;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Drop();
            b._steps.Remove(this);
        }
    }
}
