using Engine.Core.Backend;
using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Runtime.Llama;

namespace Engine.Parity.Tests;

/// <summary>Our engine on one model and backend, with the same calls as the llama.cpp harness.</summary>
internal sealed class EngineUnderTest : IDisposable
{
    private readonly IComputeBackend _backend;
    private readonly LlamaModel _model;

    private EngineUnderTest(IComputeBackend backend, LlamaModel model)
    {
        _backend = backend;
        _model = model;
    }

    /// <summary>
    /// Loads <paramref name="path"/> on the backend named <paramref name="backend"/>:
    /// <c>cpu</c> (the SIMD CpuBackend, one thread), <c>cpu2</c> (two threads) or <c>reference</c> (scalar).
    /// </summary>
    public static EngineUnderTest Load(string path, string backend)
    {
        IComputeBackend b = backend switch
        {
            "cpu" => new CpuBackend(new CpuBackendOptions { Threads = 1 }),
            "cpu2" => new CpuBackend(new CpuBackendOptions { Threads = 2 }),
            "reference" => new ReferenceBackend(),
            _ => throw new ArgumentException($"unknown backend {backend}", nameof(backend)),
        };
        try
        {
            return new EngineUnderTest(b, LlamaModel.Load(path, b));
        }
        catch
        {
            b.Dispose();
            throw;
        }
    }

    public int VocabSize => _model.Config.VocabSize;

    /// <summary>Logits of every position of <paramref name="tokens"/>, evaluated as one batch (prefill path).</summary>
    public float[][] EvaluateLogitsBatched(IReadOnlyList<int> tokens)
    {
        using var decoder = _model.CreateDecoder(new LlamaDecoderOptions { ContextLength = tokens.Count, MaxBatch = tokens.Count, AllLogits = true });
        var flat = new float[tokens.Count * VocabSize];
        decoder.Forward(tokens.ToArray(), flat);
        return Rows(flat, tokens.Count);
    }

    /// <summary>Logits of every position of <paramref name="tokens"/>, fed one token per step (decode path).</summary>
    public float[][] EvaluateLogitsStepwise(IReadOnlyList<int> tokens)
    {
        using var decoder = _model.CreateDecoder(new LlamaDecoderOptions { ContextLength = tokens.Count });
        var rows = new float[tokens.Count][];
        for (int p = 0; p < tokens.Count; p++)
            rows[p] = decoder.Forward(tokens[p]).ToArray();
        return rows;
    }

    /// <summary>Greedy generation as <see cref="LlamaCpp.LlamaCppReference.GenerateGreedy"/>: prompt as one batch, then one token per step.</summary>
    public int[] GenerateGreedy(IReadOnlyList<int> prompt, int count)
    {
        using var decoder = _model.CreateDecoder(new LlamaDecoderOptions { ContextLength = prompt.Count + count });
        int next = LlamaCpp.LlamaCppReference.ArgMax(decoder.Forward(prompt.ToArray()));
        var generated = new int[count];
        for (int i = 0; i < count; i++)
        {
            generated[i] = next;
            if (i < count - 1) next = LlamaCpp.LlamaCppReference.ArgMax(decoder.Forward(next));
        }
        return generated;
    }

    private float[][] Rows(float[] flat, int n)
    {
        var rows = new float[n][];
        for (int p = 0; p < n; p++) rows[p] = flat.AsSpan(p * VocabSize, VocabSize).ToArray();
        return rows;
    }

    public void Dispose()
    {
        _model.Dispose();
        _backend.Dispose();
    }
}
