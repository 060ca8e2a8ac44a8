using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Runtime.Llama;

/// <summary>
/// A llama-family model loaded on a backend: the GGUF file (kept mapped: on the CPU the weights
/// live in it), its <see cref="LlamaConfig"/> and its <see cref="LlamaWeights"/>. Immutable once
/// loaded; each sequence gets its own <see cref="LlamaDecoder"/> (buffers and KV cache).
/// The backend is borrowed, not owned: the caller disposes it after the model.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly bool _ownsFile;

    /// <summary>Metadata keys of the tokens that end a generation (llama.cpp's llama_vocab_is_eog: EOS, EOT, EOM).</summary>
    private static readonly string[] EndOfGenerationKeys =
        ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"];

    private LlamaModel(GgufFile file, bool ownsFile, LlamaConfig config, LlamaWeights weights, IComputeBackend backend)
    {
        File = file;
        var eog = new List<int>();
        foreach (var key in EndOfGenerationKeys)
        {
            long id = file.Metadata.GetInteger(key, -1);
            // Converters write 0xFFFFFFFF (or -1) for "none"; anything else must be a token.
            if (id is -1 or uint.MaxValue) continue;
            if (id < 0 || id >= config.VocabSize)
                throw new GgufFormatException(file.Path, key, $"token id {id} is outside the vocabulary of {config.VocabSize}");
            if (!eog.Contains((int)id)) eog.Add((int)id);
        }
        EndOfGenerationIds = eog;
        _ownsFile = ownsFile;
        Config = config;
        Weights = weights;
        Backend = backend;
    }

    /// <summary>The GGUF file the weights come from.</summary>
    public GgufFile File { get; }

    public LlamaConfig Config { get; }

    public LlamaWeights Weights { get; }

    /// <summary>Tokens that end a generation, from the tokenizer metadata (empty when the file names none).</summary>
    public IReadOnlyList<int> EndOfGenerationIds { get; }

    /// <summary>The backend every op of this model runs on.</summary>
    public IComputeBackend Backend { get; }

    /// <summary>
    /// Opens and maps <paramref name="path"/>, reads the config and loads the weights on <paramref name="backend"/>.
    /// Format problems raise <see cref="GgufFormatException"/> naming the file and the key or tensor.
    /// </summary>
    public static LlamaModel Load(string path, IComputeBackend backend)
    {
        var file = GgufFile.Open(path);
        try
        {
            return Load(file, backend, ownsFile: true);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Loads from an open file; with <paramref name="ownsFile"/> the model disposes it.</summary>
    public static LlamaModel Load(GgufFile file, IComputeBackend backend, bool ownsFile = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(backend);
        var config = LlamaConfig.FromGguf(file);
        var weights = LlamaWeights.Load(file, config, backend);
        return new LlamaModel(file, ownsFile, config, weights, backend);
    }

    /// <summary>A decoder (one sequence) over this model; see <see cref="LlamaDecoder"/>.</summary>
    public LlamaDecoder CreateDecoder(LlamaDecoderOptions? options = null) => new(this, options ?? new LlamaDecoderOptions());

    public void Dispose()
    {
        Weights.Dispose();
        if (_ownsFile) File.Dispose();
    }
}
