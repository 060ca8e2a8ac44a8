using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using LLama.Native;

namespace Engine.Parity.Tests.LlamaCpp;

/// <summary>
/// Loads llama.cpp's native library once per process with its log routed into a small in-memory
/// buffer (llama.cpp prints hundreds of lines per model load otherwise), and says which native
/// variant (noavx / avx / avx2 / avx512 build of LLamaSharp.Backend.Cpu) was picked.
/// </summary>
public static class LlamaCppNative
{
    /// <summary>Last log lines kept, for error messages.</summary>
    private const int KeptLogLines = 200;

    private static readonly Lock _gate = new();
    private static readonly ConcurrentQueue<string> _log = new();
    private static bool _loaded;
    private static string _systemInfo = "";

    /// <summary>
    /// llama.cpp's <c>llama_print_system_info()</c> (the CPU features its loaded build uses, e.g.
    /// <c>CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | …</c>); empty before <see cref="EnsureLoaded"/>.
    /// </summary>
    public static string SystemInfo => _systemInfo;

    /// <summary>The AVX level of the native build LLamaSharp loaded, or null before <see cref="EnsureLoaded"/>.</summary>
    public static AvxLevel? LoadedAvxLevel =>
        _loaded ? NativeApi.GetLoadedNativeLibrary(NativeLibraryName.LLama)?.Metadata?.AvxLevel : null;

    /// <summary>The most recent llama.cpp log lines (at most 200), oldest first.</summary>
    public static IReadOnlyList<string> RecentLog => _log.ToArray();

    /// <summary>Configures logging and loads the native library; later calls return at once.</summary>
    public static void EnsureLoaded()
    {
        lock (_gate)
        {
            if (_loaded) return;
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                NativeLibraryConfig.All.WithLogCallback(Capture);
            NativeApi.llama_empty_call();
            // Loading may have reset the callback; set it again on the loaded library.
            NativeLogConfig.llama_log_set(Capture);
            _systemInfo = ReadSystemInfo();
            _loaded = true;
        }
    }

    private static string ReadSystemInfo()
    {
        IntPtr text = NativeApi.llama_print_system_info();
        return (Marshal.PtrToStringUTF8(text) ?? "").Trim();
    }

    private static void Capture(LLamaLogLevel level, string message)
    {
        _log.Enqueue($"[{level}] {message.TrimEnd('\n')}");
        while (_log.Count > KeptLogLines) _log.TryDequeue(out _);
    }
}
