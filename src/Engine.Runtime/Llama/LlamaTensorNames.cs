namespace Engine.Runtime.Llama;

/// <summary>GGUF tensor names of a llama-family model (llama.cpp's LLM_TENSOR_NAMES for LLM_ARCH_LLAMA / QWEN2).</summary>
public static class LlamaTensorNames
{
    /// <summary><c>[dim, vocab]</c>: vocab rows of dim.</summary>
    public const string TokenEmbedding = "token_embd.weight";

    /// <summary><c>[dim]</c>.</summary>
    public const string OutputNorm = "output_norm.weight";

    /// <summary><c>[dim, vocab]</c>; absent when the output head is tied to <see cref="TokenEmbedding"/>.</summary>
    public const string Output = "output.weight";

    /// <summary>Name of a per-layer tensor: <c>blk.{layer}.{suffix}</c>, e.g. <c>Block(0, "attn_q.weight")</c>.</summary>
    public static string Block(int layer, string suffix) => $"blk.{layer}.{suffix}";
}
