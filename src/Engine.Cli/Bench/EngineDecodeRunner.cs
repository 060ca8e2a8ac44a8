using System.Diagnostics;
using Engine.Core.Backend;
using Engine.Cpu;
using Engine.Runtime.Llama;

namespace Engine.Cli.Bench;

/// <summary>
/// Our engine under the decode benchmark: the model on a <see cref="CpuBackend"/> with the given
/// thread count, one <see cref="LlamaDecoder"/> whose context holds the prompt and the decoded tokens.
/// </summary>
internal sealed class EngineDecodeRunner : IDecodeRunner
{
    private readonly IComputeBackend _backend;
    private readonly LlamaModel _model;
    private readonly LlamaDecoder _decoder;

    /// <param name="modelPath">GGUF file.</param>
    /// <param name="threads">CPU backend threads, the calling thread included.</param>
    /// <param name="contextSize">KV cache positions.</param>
    /// <param name="wrap">Optional decorator around the backend (the profiler).</param>
    public EngineDecodeRunner(string modelPath, int threads, int contextSize, Func<IComputeBackend, IComputeBackend>? wrap = null)
    {
        var cpu = new CpuBackend(new CpuBackendOptions { Threads = threads });
        _backend = wrap is null ? cpu : wrap(cpu);
        try
        {
            _model = LlamaModel.Load(modelPath, _backend);
            _decoder = _model.CreateDecoder(new LlamaDecoderOptions { ContextLength = contextSize });
        }
        catch
        {
            _model?.Dispose();
            _backend.Dispose();
            throw;
        }
        Detail = $"{_backend.Name}, {threads} threads";
    }

    public string Name => "engine";

    public string Detail { get; }

    /// <summary>Called between the prefill and the decode steps of a round (the profiler resets its totals there).</summary>
    public Action? AfterPrefill { get; set; }

    public DecodeRound Run(ReadOnlySpan<int> prompt, int tokens)
    {
        _decoder.Reset();
        long start = Stopwatch.GetTimestamp();
        int next = ArgMax(_decoder.Forward(prompt));
        double prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;
        AfterPrefill?.Invoke();

        double cpu = ThreadCpuClock.Now();
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < tokens; i++)
            next = ArgMax(_decoder.Forward(next));
        double decode = Stopwatch.GetElapsedTime(start).TotalSeconds;
        cpu = ThreadCpuClock.Now() - cpu;
        return new DecodeRound(prefill, decode, tokens, next, cpu);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        _decoder.Dispose();
        _model.Dispose();
        _backend.Dispose();
    }
}
