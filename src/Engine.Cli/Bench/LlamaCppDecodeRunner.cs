using System.Diagnostics;
using System.Runtime.InteropServices;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Engine.Cli.Bench;

/// <summary>
/// llama.cpp in process through LLamaSharp 0.30.0's low-level API (LLamaSharp.Backend.Cpu's native
/// build for this CPU), with llama.cpp's own defaults for everything but the context size, batch size
/// and thread count, as <c>llama-bench</c> would run it (f16 KV cache, flash attention on auto).
/// </summary>
internal sealed class LlamaCppDecodeRunner : IDecodeRunner
{
    private static readonly Lock _loadGate = new();
    private static string? _systemInfo;

    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();

    /// <param name="modelPath">GGUF file.</param>
    /// <param name="threads">llama.cpp threads (decode and batch).</param>
    /// <param name="contextSize">KV cache positions.</param>
    /// <param name="avx">Native build to load (LLamaSharp.Backend.Cpu ships noavx, avx, avx2 and avx512); null: LLamaSharp's pick for this CPU.</param>
    public LlamaCppDecodeRunner(string modelPath, int threads, int contextSize, AvxLevel? avx = null)
    {
        EnsureNativeLoaded(avx);
        var parameters = new ModelParams(modelPath)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        try
        {
            _context = _weights.CreateContext(parameters);
        }
        catch
        {
            _weights.Dispose();
            throw;
        }
        var loaded = NativeApi.GetLoadedNativeLibrary(NativeLibraryName.LLama)?.Metadata?.AvxLevel;
        Detail = $"LLamaSharp 0.30.0, native build {loaded?.ToString() ?? "?"}, {threads} threads";
    }

    public string Name => "llama.cpp";

    public string Detail { get; }

    /// <summary>llama.cpp's <c>llama_print_system_info()</c> once loaded (CPU features of its build).</summary>
    public static string SystemInfo => _systemInfo ?? "";

    public DecodeRound Run(ReadOnlySpan<int> prompt, int tokens)
    {
        var handle = _context.NativeHandle;
        handle.MemoryClear(true);

        long start = Stopwatch.GetTimestamp();
        _batch.Clear();
        int last = 0;
        for (int p = 0; p < prompt.Length; p++)
            last = _batch.Add(prompt[p], p, LLamaSeqId.Zero, logits: p == prompt.Length - 1);
        Decode(handle);
        int next = ArgMax(handle.GetLogitsIth(last));
        double prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;

        double cpu = ThreadCpuClock.Now();
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < tokens; i++)
        {
            _batch.Clear();
            last = _batch.Add(next, prompt.Length + i, LLamaSeqId.Zero, logits: true);
            Decode(handle);
            next = ArgMax(handle.GetLogitsIth(last));
        }
        double decode = Stopwatch.GetElapsedTime(start).TotalSeconds;
        cpu = ThreadCpuClock.Now() - cpu;
        return new DecodeRound(prefill, decode, tokens, next, cpu);
    }

    private void Decode(SafeLLamaContextHandle handle)
    {
        var result = handle.Decode(_batch);
        if (result != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode returned {result}");
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>llama.cpp's errors go to stderr; its info and debug lines (hundreds per model load) are dropped.</summary>
    private static void LogErrors(LLamaLogLevel level, string message)
    {
        if (level == LLamaLogLevel.Error) Console.Error.Write($"llama.cpp: {message}");
    }

    /// <summary>Loads the native library once, its log (hundreds of lines per model) silenced.</summary>
    private static void EnsureNativeLoaded(AvxLevel? avx)
    {
        lock (_loadGate)
        {
            if (_systemInfo is not null) return;
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
            {
                NativeLibraryConfig.All.WithLogCallback(LogErrors);
                if (avx is { } level) NativeLibraryConfig.All.WithCuda(false).WithVulkan(false).WithAvx(level);
            }
            NativeApi.llama_empty_call();
            NativeLogConfig.llama_log_set(LogErrors);
            _systemInfo = (Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info()) ?? "").Trim();
        }
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
