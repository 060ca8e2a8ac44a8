using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Runtime.Llama;

/// <summary>
/// The weights of one transformer layer, as loaded on a backend. Shapes are given as ggml lists
/// them (fastest first): <c>[cols, rows]</c>.
/// </summary>
public sealed class LlamaLayerWeights
{
    /// <summary><c>[dim]</c>.</summary>
    public required DeviceWeight AttnNorm { get; init; }

    /// <summary><c>[dim, dim]</c>.</summary>
    public required DeviceWeight Q { get; init; }

    /// <summary><c>[dim, kvDim]</c>.</summary>
    public required DeviceWeight K { get; init; }

    /// <summary><c>[dim, kvDim]</c>.</summary>
    public required DeviceWeight V { get; init; }

    /// <summary><c>[dim]</c>, Qwen2-style bias; null when the file has none.</summary>
    public DeviceWeight? QBias { get; init; }

    /// <summary><c>[kvDim]</c> or null.</summary>
    public DeviceWeight? KBias { get; init; }

    /// <summary><c>[kvDim]</c> or null.</summary>
    public DeviceWeight? VBias { get; init; }

    /// <summary><c>[dim, dim]</c>: attention output projection.</summary>
    public required DeviceWeight AttnOutput { get; init; }

    /// <summary><c>[dim]</c>.</summary>
    public required DeviceWeight FfnNorm { get; init; }

    /// <summary><c>[dim, ffn]</c>.</summary>
    public required DeviceWeight Gate { get; init; }

    /// <summary><c>[dim, ffn]</c>.</summary>
    public required DeviceWeight Up { get; init; }

    /// <summary><c>[ffn, dim]</c>.</summary>
    public required DeviceWeight Down { get; init; }

    internal IEnumerable<DeviceWeight> All()
    {
        yield return AttnNorm; yield return Q; yield return K; yield return V;
        if (QBias is not null) yield return QBias;
        if (KBias is not null) yield return KBias;
        if (VBias is not null) yield return VBias;
        yield return AttnOutput; yield return FfnNorm; yield return Gate; yield return Up; yield return Down;
    }
}

/// <summary>
/// All weights of a llama-family model, loaded once on a backend with <see cref="IComputeBackend.LoadWeight"/>
/// (on the CPU they stay in the memory mapping). Shapes are checked against the <see cref="LlamaConfig"/>.
/// </summary>
public sealed class LlamaWeights : IDisposable
{
    private LlamaWeights(DeviceWeight tokenEmbedding, DeviceWeight outputNorm, DeviceWeight output, bool tied, LlamaLayerWeights[] layers)
    {
        TokenEmbedding = tokenEmbedding;
        OutputNorm = outputNorm;
        Output = output;
        OutputTied = tied;
        Layers = layers;
    }

    /// <summary><c>[dim, vocab]</c>.</summary>
    public DeviceWeight TokenEmbedding { get; }

    /// <summary><c>[dim]</c>.</summary>
    public DeviceWeight OutputNorm { get; }

    /// <summary><c>[dim, vocab]</c>: the output head (the same object as <see cref="TokenEmbedding"/> when tied).</summary>
    public DeviceWeight Output { get; }

    /// <summary>True when the file has no <c>output.weight</c> and the head reuses the token embedding.</summary>
    public bool OutputTied { get; }

    /// <summary>One entry per layer.</summary>
    public IReadOnlyList<LlamaLayerWeights> Layers { get; }

    /// <summary>Loads every tensor of <paramref name="file"/> that <paramref name="config"/> needs onto <paramref name="backend"/>.</summary>
    public static LlamaWeights Load(GgufFile file, LlamaConfig config, IComputeBackend backend)
    {
        var loaded = new List<DeviceWeight>();
        try
        {
            DeviceWeight Load(string name, int cols, int rows)
            {
                var t = file.GetTensor(name);
                bool ok = rows == 1
                    ? t.Shape.Length == 1 && t.Shape[0] == cols
                    : t.Shape.Length == 2 && t.Shape[0] == cols && t.Shape[1] == rows;
                if (!ok)
                {
                    string expected = rows == 1 ? $"[{cols}]" : $"[{cols}, {rows}]";
                    throw new GgufFormatException(file.Path, name, $"shape [{string.Join(", ", t.Shape)}] does not match the config's {expected}");
                }
                var w = backend.LoadWeight(t);
                loaded.Add(w);
                return w;
            }

            DeviceWeight? LoadOptional(string name, int cols) => file.HasTensor(name) ? Load(name, cols, 1) : null;

            int dim = config.Dim, kv = config.KvDim, ffn = config.FfnDim, vocab = config.VocabSize;
            var embd = Load(LlamaTensorNames.TokenEmbedding, dim, vocab);
            var outNorm = Load(LlamaTensorNames.OutputNorm, dim, 1);
            bool tied = !file.HasTensor(LlamaTensorNames.Output);
            var output = tied ? embd : Load(LlamaTensorNames.Output, dim, vocab);

            var layers = new LlamaLayerWeights[config.Layers];
            for (int l = 0; l < layers.Length; l++)
            {
                string B(string s) => LlamaTensorNames.Block(l, s);
                layers[l] = new LlamaLayerWeights
                {
                    AttnNorm = Load(B("attn_norm.weight"), dim, 1),
                    Q = Load(B("attn_q.weight"), dim, dim),
                    K = Load(B("attn_k.weight"), dim, kv),
                    V = Load(B("attn_v.weight"), dim, kv),
                    QBias = LoadOptional(B("attn_q.bias"), dim),
                    KBias = LoadOptional(B("attn_k.bias"), kv),
                    VBias = LoadOptional(B("attn_v.bias"), kv),
                    AttnOutput = Load(B("attn_output.weight"), dim, dim),
                    FfnNorm = Load(B("ffn_norm.weight"), dim, 1),
                    Gate = Load(B("ffn_gate.weight"), dim, ffn),
                    Up = Load(B("ffn_up.weight"), dim, ffn),
                    Down = Load(B("ffn_down.weight"), ffn, dim),
                };
            }
            return new LlamaWeights(embd, outNorm, output, tied, layers);
        }
        catch
        {
            foreach (var w in loaded) w.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        TokenEmbedding.Dispose();
        OutputNorm.Dispose();
        if (!OutputTied) Output.Dispose();
        foreach (var layer in Layers)
            foreach (var w in layer.All()) w.Dispose();
    }
}
