using System.Runtime.InteropServices;

namespace Engine.Kernels;

/// <summary>
/// The few CUDA driver API entry points ILGPU 1.5.3 does not wrap: stream capture, graphs, events and one async
/// host-to-device copy. Resolved once from the driver library (<c>libcuda.so.1</c>, else what ILGPU itself loads,
/// <c>libcuda.so</c>; <c>nvcuda.dll</c> on Windows) as unmanaged function pointers; a missing library or symbol makes
/// <see cref="TryLoad"/> fail with a reason, never throw. Signatures follow the CUDA driver API reference (cuda.h):
/// handles (CUstream, CUgraph, CUgraphExec, CUevent) are pointers, CUdeviceptr is a 64-bit integer, CUresult and
/// the enums are 32-bit ints. Every call needs the accelerator's context current on the calling thread
/// (ILGPU's <c>Accelerator.BindScoped</c>).
/// </summary>
internal sealed unsafe class CudaDriver
{
    /// <summary>CUDA_SUCCESS.</summary>
    public const int Success = 0;

    /// <summary>CU_STREAM_CAPTURE_MODE_RELAXED (cuda.h: GLOBAL 0, THREAD_LOCAL 1, RELAXED 2): other threads' unsafe calls are not refused.</summary>
    public const int CaptureModeRelaxed = 2;

    /// <summary>CU_EVENT_DEFAULT (timing enabled).</summary>
    public const uint EventDefault = 0;

    // CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
    private readonly delegate* unmanaged<IntPtr, int, int> _beginCapture;
    // CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph)
    private readonly delegate* unmanaged<IntPtr, IntPtr*, int> _endCapture;
    // CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags)
    private readonly delegate* unmanaged<IntPtr*, IntPtr, ulong, int> _instantiate;
    // CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
    private readonly delegate* unmanaged<IntPtr, IntPtr, int> _graphLaunch;
    // CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
    private readonly delegate* unmanaged<IntPtr, int> _execDestroy;
    // CUresult cuGraphDestroy(CUgraph hGraph)
    private readonly delegate* unmanaged<IntPtr, int> _graphDestroy;
    // CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode* nodes, size_t* numNodes)
    private readonly delegate* unmanaged<IntPtr, IntPtr*, nuint*, int> _getNodes;
    // CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream)
    private readonly delegate* unmanaged<ulong, void*, nuint, IntPtr, int> _copyHtoDAsync;
    // CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags)
    private readonly delegate* unmanaged<IntPtr*, uint, int> _eventCreate;
    // CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
    private readonly delegate* unmanaged<IntPtr, IntPtr, int> _eventRecord;
    // CUresult cuEventSynchronize(CUevent hEvent)
    private readonly delegate* unmanaged<IntPtr, int> _eventSynchronize;
    // CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) (the unversioned export ILGPU uses; _v2 only where it is missing)
    private readonly delegate* unmanaged<float*, IntPtr, IntPtr, int> _eventElapsed;
    // CUresult cuEventDestroy_v2(CUevent hEvent)
    private readonly delegate* unmanaged<IntPtr, int> _eventDestroy;
    // CUresult cuGetErrorName(CUresult error, const char** pStr)
    private readonly delegate* unmanaged<int, byte**, int> _errorName;

    private CudaDriver(IntPtr lib)
    {
        _beginCapture = (delegate* unmanaged<IntPtr, int, int>)Export(lib, "cuStreamBeginCapture_v2");
        _endCapture = (delegate* unmanaged<IntPtr, IntPtr*, int>)Export(lib, "cuStreamEndCapture");
        _instantiate = (delegate* unmanaged<IntPtr*, IntPtr, ulong, int>)Export(lib, "cuGraphInstantiateWithFlags");
        _graphLaunch = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(lib, "cuGraphLaunch");
        _execDestroy = (delegate* unmanaged<IntPtr, int>)Export(lib, "cuGraphExecDestroy");
        _graphDestroy = (delegate* unmanaged<IntPtr, int>)Export(lib, "cuGraphDestroy");
        _getNodes = (delegate* unmanaged<IntPtr, IntPtr*, nuint*, int>)Export(lib, "cuGraphGetNodes");
        _copyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, IntPtr, int>)Export(lib, "cuMemcpyHtoDAsync_v2");
        _eventCreate = (delegate* unmanaged<IntPtr*, uint, int>)Export(lib, "cuEventCreate");
        _eventRecord = (delegate* unmanaged<IntPtr, IntPtr, int>)Export(lib, "cuEventRecord");
        _eventSynchronize = (delegate* unmanaged<IntPtr, int>)Export(lib, "cuEventSynchronize");
        _eventElapsed = (delegate* unmanaged<float*, IntPtr, IntPtr, int>)(
            NativeLibrary.TryGetExport(lib, "cuEventElapsedTime", out var v1) ? v1 : Export(lib, "cuEventElapsedTime_v2"));
        _eventDestroy = (delegate* unmanaged<IntPtr, int>)Export(lib, "cuEventDestroy_v2");
        _errorName = (delegate* unmanaged<int, byte**, int>)Export(lib, "cuGetErrorName");
    }

    private static CudaDriver? _loaded;
    private static string _loadFailure = "";

    /// <summary>The driver's entry points, loaded on first use; null with a one-line reason when the library or a symbol is missing.</summary>
    public static CudaDriver? TryLoad(out string reason)
    {
        if (_loaded is null && _loadFailure.Length == 0)
        {
            string[] names = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];
            IntPtr lib = IntPtr.Zero;
            foreach (var name in names)
                if (NativeLibrary.TryLoad(name, out lib)) break;
            if (lib == IntPtr.Zero) _loadFailure = $"CUDA driver library not found ({string.Join(", ", names)})";
            else
            {
                try
                {
                    _loaded = new CudaDriver(lib);
                }
                catch (EntryPointNotFoundException e)
                {
                    _loadFailure = e.Message;
                }
            }
        }
        reason = _loadFailure;
        return _loaded;
    }

    private static IntPtr Export(IntPtr lib, string name) =>
        NativeLibrary.TryGetExport(lib, name, out var address) ? address : throw new EntryPointNotFoundException($"CUDA driver has no {name} (driver too old for CUDA graphs)");

    public int BeginCapture(IntPtr stream) => _beginCapture(stream, CaptureModeRelaxed);

    public int EndCapture(IntPtr stream, out IntPtr graph)
    {
        IntPtr g = IntPtr.Zero;
        int rc = _endCapture(stream, &g);
        graph = g;
        return rc;
    }

    public int Instantiate(IntPtr graph, out IntPtr exec)
    {
        IntPtr e = IntPtr.Zero;
        int rc = _instantiate(&e, graph, 0);
        exec = e;
        return rc;
    }

    public int Launch(IntPtr exec, IntPtr stream) => _graphLaunch(exec, stream);

    public int DestroyExec(IntPtr exec) => _execDestroy(exec);

    public int DestroyGraph(IntPtr graph) => _graphDestroy(graph);

    /// <summary>Number of nodes of a graph (nodes = NULL asks for the count only).</summary>
    public int NodeCount(IntPtr graph, out long count)
    {
        nuint n = 0;
        int rc = _getNodes(graph, null, &n);
        count = (long)n;
        return rc;
    }

    /// <summary>Enqueues a copy of <paramref name="bytes"/> bytes from host memory that must stay put until the call returns (pinned or stack).</summary>
    public int CopyHtoDAsync(ulong device, void* host, long bytes, IntPtr stream) => _copyHtoDAsync(device, host, (nuint)bytes, stream);

    public int CreateEvent(out IntPtr e)
    {
        IntPtr h = IntPtr.Zero;
        int rc = _eventCreate(&h, EventDefault);
        e = h;
        return rc;
    }

    public int Record(IntPtr e, IntPtr stream) => _eventRecord(e, stream);

    public int SynchronizeEvent(IntPtr e) => _eventSynchronize(e);

    public int Elapsed(IntPtr start, IntPtr end, out float milliseconds)
    {
        float ms = 0;
        int rc = _eventElapsed(&ms, start, end);
        milliseconds = ms;
        return rc;
    }

    public int DestroyEvent(IntPtr e) => _eventDestroy(e);

    /// <summary>"CUDA_ERROR_… (code)" for a CUresult.</summary>
    public string Describe(int result)
    {
        byte* name = null;
        if (result != Success && _errorName(result, &name) == Success && name != null)
            return $"{Marshal.PtrToStringAnsi((IntPtr)name)} ({result})";
        return $"CUresult {result}";
    }

    /// <summary>Throws <see cref="CudaGraphException"/> naming <paramref name="what"/> unless <paramref name="result"/> is CUDA_SUCCESS.</summary>
    public void Check(int result, string what)
    {
        if (result != Success) throw new CudaGraphException($"{what} failed: {Describe(result)}");
    }
}

/// <summary>A CUDA driver call of the graph path failed (the backend then falls back to eager launches).</summary>
internal sealed class CudaGraphException(string message) : Exception(message);
