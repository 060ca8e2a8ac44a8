using LLama;
using LLama.Common;
using LLama.Native;

namespace Engine.Parity.Tests.LlamaCpp;

/// <summary>
/// llama.cpp in process (LLamaSharp 0.30.0 over LLamaSharp.Backend.Cpu's native build), used as the
/// oracle for decoder parity: loads one GGUF, evaluates a token sequence returning the logits of
/// every position, and generates greedily. A thin wrapper over LLamaSharp's low-level API
/// (<see cref="LLamaWeights"/>, <see cref="LLamaContext"/>, <see cref="LLamaBatch"/>, native decode),
/// so nothing of LLamaSharp's executors or samplers stands between the test and llama.cpp.
/// <para>
/// Not thread-safe: one instance serves one test at a time. The KV cache is cleared at the start of
/// every call, so calls are independent.
/// </para>
/// </summary>
public sealed class LlamaCppReference : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();

    private LlamaCppReference(LLamaWeights weights, LLamaContext context)
    {
        _weights = weights;
        _context = context;
    }

    /// <summary>Tokens in the model's vocabulary (the length of each logits row).</summary>
    public int VocabSize => _weights.Vocab.Count;

    /// <summary>The context size llama.cpp allocated (positions the KV cache holds).</summary>
    public int ContextSize => (int)_context.ContextSize;

    /// <summary>
    /// Loads <paramref name="path"/> on the CPU with <paramref name="threads"/> threads and a context of
    /// <paramref name="contextSize"/> positions. One batch holds the whole context, so any prompt
    /// that fits the context is evaluated in one decode call.
    /// </summary>
    /// <param name="path">GGUF file.</param>
    /// <param name="threads">llama.cpp threads, for single tokens and batches alike.</param>
    /// <param name="contextSize">Positions the KV cache holds (also the largest batch).</param>
    /// <param name="f32KvCache">
    /// Keep K and V in f32 (true, for parity: our engine's cache is f32) or in llama.cpp's default f16.
    /// </param>
    public static LlamaCppReference Load(string path, int threads = 1, int contextSize = 256, bool f32KvCache = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextSize, 1);
        LlamaCppNative.EnsureLoaded();
        var parameters = new ModelParams(path)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            // Plain attention (softmax of K·Q then V) is the computation our Attention op specifies;
            // the flash-attention kernel accumulates in a different order (and in f16 for V on the CPU).
            FlashAttention = false,
        };
        if (f32KvCache)
        {
            parameters.TypeK = GGMLType.GGML_TYPE_F32;
            parameters.TypeV = GGMLType.GGML_TYPE_F32;
        }
        var weights = LLamaWeights.LoadFromFile(parameters);
        try
        {
            var context = weights.CreateContext(parameters);
            return new LlamaCppReference(weights, context);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Evaluates <paramref name="tokens"/> from position 0 in one batch and returns the logits of
    /// every position: row p (length <see cref="VocabSize"/>) predicts the token after <c>tokens[p]</c>.
    /// </summary>
    public float[][] EvaluateLogits(IReadOnlyList<int> tokens)
    {
        CheckFits(tokens.Count);
        _context.NativeHandle.MemoryClear(true);
        _batch.Clear();
        var indices = new int[tokens.Count];
        for (int p = 0; p < tokens.Count; p++)
            indices[p] = _batch.Add(tokens[p], p, LLamaSeqId.Zero, logits: true);
        Decode();
        var rows = new float[tokens.Count][];
        for (int p = 0; p < tokens.Count; p++)
            rows[p] = _context.NativeHandle.GetLogitsIth(indices[p]).ToArray();
        return rows;
    }

    /// <summary>
    /// Greedy generation: evaluates <paramref name="prompt"/> in one batch, then appends the arg-max
    /// token (lowest id on a tie, as llama.cpp's greedy sampler) one at a time, <paramref name="count"/> times.
    /// Does not stop at end-of-sequence, so the result always has <paramref name="count"/> ids.
    /// </summary>
    public int[] GenerateGreedy(IReadOnlyList<int> prompt, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(prompt.Count, 1);
        CheckFits(prompt.Count + count - 1);
        _context.NativeHandle.MemoryClear(true);
        _batch.Clear();
        int last = 0;
        for (int p = 0; p < prompt.Count; p++)
            last = _batch.Add(prompt[p], p, LLamaSeqId.Zero, logits: p == prompt.Count - 1);
        Decode();

        var generated = new int[count];
        int position = prompt.Count;
        for (int i = 0; i < count; i++)
        {
            int next = ArgMax(_context.NativeHandle.GetLogitsIth(last));
            generated[i] = next;
            if (i == count - 1) break;
            _batch.Clear();
            last = _batch.Add(next, position++, LLamaSeqId.Zero, logits: true);
            Decode();
        }
        return generated;
    }

    /// <summary>Index of the largest value, the first one on a tie.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    private void Decode()
    {
        var result = _context.NativeHandle.Decode(_batch);
        if (result != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode returned {result} for a batch of {_batch.TokenCount} tokens");
    }

    private void CheckFits(int positions)
    {
        if (positions > ContextSize)
            throw new ArgumentException($"{positions} positions do not fit the llama.cpp context of {ContextSize}");
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
