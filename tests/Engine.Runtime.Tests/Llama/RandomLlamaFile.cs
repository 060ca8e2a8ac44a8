using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Runtime.Llama;

namespace Engine.Runtime.Tests.Llama;

/// <summary>
/// Writes small seeded random-weight llama-family GGUF files (F32) with our own writer, for shapes
/// and cases the fixtures lack: GQA ratios, tied heads, qwen2 biases, missing or mistyped keys.
/// </summary>
internal sealed record RandomLlamaFile
{
    public string Architecture { get; init; } = "llama";
    public int Dim { get; init; } = 64;
    public int Layers { get; init; } = 2;
    public int FfnDim { get; init; } = 96;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int Vocab { get; init; } = 96;
    public int ContextLength { get; init; } = 64;
    public bool TiedOutput { get; init; }

    /// <summary>Write q/k/v bias tensors (qwen2 style); <see cref="BiasScale"/> 0 writes zeros.</summary>
    public bool Bias { get; init; }
    public float BiasScale { get; init; } = 0.5f;
    public int Seed { get; init; } = 1;

    /// <summary>Metadata keys to leave out (to test the errors that name them).</summary>
    public IReadOnlyCollection<string> OmitKeys { get; init; } = [];

    /// <summary>Metadata to write instead of the usual value.</summary>
    public IReadOnlyDictionary<string, GgufValue> OverrideKeys { get; init; } = new Dictionary<string, GgufValue>();

    /// <summary>Tensor names to leave out.</summary>
    public IReadOnlyCollection<string> OmitTensors { get; init; } = [];

    public void Write(string path)
    {
        string a = Architecture;
        var meta = new List<(string, GgufValue)>
        {
            ("general.architecture", GgufValue.Of(a)),
            ($"{a}.context_length", GgufValue.Of((uint)ContextLength)),
            ($"{a}.embedding_length", GgufValue.Of((uint)Dim)),
            ($"{a}.block_count", GgufValue.Of((uint)Layers)),
            ($"{a}.feed_forward_length", GgufValue.Of((uint)FfnDim)),
            ($"{a}.attention.head_count", GgufValue.Of((uint)Heads)),
            ($"{a}.attention.head_count_kv", GgufValue.Of((uint)KvHeads)),
            ($"{a}.rope.freq_base", GgufValue.Of(10000f)),
            ($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Of(1e-5f)),
            ("tokenizer.ggml.eos_token_id", GgufValue.Of(2u)),
        };

        var rng = new Random(Seed);
        int headDim = Dim / Heads, kv = KvHeads * headDim;
        // Weights ~ U(-s, s) with s = 1/sqrt(fan-in), norms near 1: activations stay O(1) through the layers.
        var tensors = new List<(string Name, long[] Shape, float[] Data)>
        {
            (LlamaTensorNames.TokenEmbedding, [Dim, Vocab], Uniform(rng, Dim * Vocab, 1f)),
            (LlamaTensorNames.OutputNorm, [Dim], Norm(rng, Dim)),
        };
        if (!TiedOutput) tensors.Add((LlamaTensorNames.Output, [Dim, Vocab], Uniform(rng, Dim * Vocab, 1f / MathF.Sqrt(Dim))));
        for (int l = 0; l < Layers; l++)
        {
            string B(string s) => LlamaTensorNames.Block(l, s);
            tensors.Add((B("attn_norm.weight"), [Dim], Norm(rng, Dim)));
            tensors.Add((B("attn_q.weight"), [Dim, Dim], Uniform(rng, Dim * Dim, 1f / MathF.Sqrt(Dim))));
            tensors.Add((B("attn_k.weight"), [Dim, kv], Uniform(rng, Dim * kv, 1f / MathF.Sqrt(Dim))));
            tensors.Add((B("attn_v.weight"), [Dim, kv], Uniform(rng, Dim * kv, 1f / MathF.Sqrt(Dim))));
            if (Bias)
            {
                tensors.Add((B("attn_q.bias"), [Dim], Uniform(rng, Dim, BiasScale)));
                tensors.Add((B("attn_k.bias"), [kv], Uniform(rng, kv, BiasScale)));
                tensors.Add((B("attn_v.bias"), [kv], Uniform(rng, kv, BiasScale)));
            }
            tensors.Add((B("attn_output.weight"), [Dim, Dim], Uniform(rng, Dim * Dim, 1f / MathF.Sqrt(Dim))));
            tensors.Add((B("ffn_norm.weight"), [Dim], Norm(rng, Dim)));
            tensors.Add((B("ffn_gate.weight"), [Dim, FfnDim], Uniform(rng, Dim * FfnDim, 1f / MathF.Sqrt(Dim))));
            tensors.Add((B("ffn_up.weight"), [Dim, FfnDim], Uniform(rng, Dim * FfnDim, 1f / MathF.Sqrt(Dim))));
            tensors.Add((B("ffn_down.weight"), [FfnDim, Dim], Uniform(rng, FfnDim * Dim, 1f / MathF.Sqrt(FfnDim))));
        }

        using var w = GgufWriter.Create(path);
        foreach (var (key, value) in meta)
            if (!OmitKeys.Contains(key) && !OverrideKeys.ContainsKey(key)) w.Metadata.Set(key, value);
        foreach (var (key, value) in OverrideKeys) w.Metadata.Set(key, value);
        tensors.RemoveAll(t => OmitTensors.Contains(t.Name));
        foreach (var t in tensors) w.AddTensor(t.Name, GgmlType.F32, t.Shape);
        foreach (var t in tensors) w.WriteTensor(t.Name, MemoryMarshal.AsBytes(t.Data.AsSpan()));
        w.Finish();
    }

    private static float[] Uniform(Random rng, int count, float scale)
    {
        var d = new float[count];
        for (int i = 0; i < count; i++) d[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return d;
    }

    private static float[] Norm(Random rng, int count)
    {
        var d = new float[count];
        for (int i = 0; i < count; i++) d[i] = 0.8f + 0.4f * (float)rng.NextDouble();
        return d;
    }
}
