using Engine.Core.Gguf;
using Engine.Kernels.Testing;

namespace Engine.GpuBench;

/// <summary>Shapes for a run: full (a GPU) or smoke (the CPU accelerator, tiny).</summary>
internal sealed record Sizes(
    long CopyBytes,
    (int Rows, int Cols)[] MatVecs,
    Sizes.Model[] Models,
    SyntheticModelConfig[] SynthModels,
    int DecodeWarmup, int DecodeTokens, int GraphCheckTokens, int EnqueueCalls,
    int TopKCount, int TopKQueries, int TopK, int TopKBatch,
    TinyLlama.Shape CheckShape,
    int AttentionPositions)
{
    public sealed record Model(string Name, TinyLlama.Shape Shape);

    /// <summary>SmolLM2-135M: 30 layers, d 576, 9 heads / 3 KV heads, ff 1536, vocab 49152 (its config.json).</summary>
    public static readonly TinyLlama.Shape SmolLM2_135M = new(30, 576, 9, 3, 1536, 49152, 512);

    /// <summary>TinyLlama-1.1B: 22 layers, d 2048, 32 heads / 4 KV heads, ff 5632, vocab 32000 (its config.json).</summary>
    public static readonly TinyLlama.Shape TinyLlama_1_1B = new(22, 2048, 32, 4, 5632, 32000, 512);

    public static readonly Sizes Full = new(
        CopyBytes: 1L << 30,
        MatVecs: [(576, 1536), (2048, 5632), (5632, 2048), (32000, 2048)],
        Models: [new("SmolLM2-135M", SmolLM2_135M), new("TinyLlama-1.1B", TinyLlama_1_1B)],
        SynthModels: [SyntheticModelConfig.SmolLM2_135M, SyntheticModelConfig.TinyLlama_1_1B],
        DecodeWarmup: 8, DecodeTokens: 128, GraphCheckTokens: 64, EnqueueCalls: 500,
        TopKCount: 1_000_000, TopKQueries: 50, TopK: 50, TopKBatch: 16,
        CheckShape: new TinyLlama.Shape(2, 2048, 32, 4, 5632, 4096, 512),
        AttentionPositions: 300);

    public static readonly Sizes Smoke = new(
        CopyBytes: 64L << 10,
        MatVecs: [(64, 96), (96, 64)],
        Models: [new("tiny", new TinyLlama.Shape(2, 64, 4, 2, 96, 100, 32))],
        SynthModels: [SyntheticModelConfig.Tiny],
        DecodeWarmup: 2, DecodeTokens: 4, GraphCheckTokens: 4, EnqueueCalls: 5,
        TopKCount: 2100, TopKQueries: 3, TopK: 4, TopKBatch: 2,
        CheckShape: new TinyLlama.Shape(2, 64, 4, 2, 96, 100, 32),
        AttentionPositions: 20);
}
