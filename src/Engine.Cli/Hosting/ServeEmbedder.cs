using Engine.Core.Backend;
using Engine.Cpu;
using Engine.Runtime.Encoding;
using Engine.Runtime.Ranking;

namespace Engine.Cli.Hosting;

/// <summary>
/// The text encoder <c>engine serve</c> ranks with: all-MiniLM-L6-v2 in Q8_0 on the CPU backend (weights
/// converted once and cached per user), or, when that cannot be loaded, the hashed bag-of-words
/// embedder with one stderr line saying so (the server still serves; query texts match by words only).
/// </summary>
public sealed class ServeEmbedder : IDisposable
{
    private readonly IComputeBackend? _backend;
    private readonly IDisposable? _owned;

    private ServeEmbedder(ITextEmbedder embedder, IComputeBackend? backend, IDisposable? owned, string description)
    {
        Embedder = embedder;
        _backend = backend;
        _owned = owned;
        Description = description;
    }

    /// <summary>The encoder.</summary>
    public ITextEmbedder Embedder { get; }

    /// <summary>One line for the startup log.</summary>
    public string Description { get; }

    /// <summary>MiniLM on a CPU backend of <paramref name="threads"/> threads, or the hashing fallback.</summary>
    public static ServeEmbedder Create(int threads, Action<string> warn)
    {
        var backend = new CpuBackend(threads: threads);
        try
        {
            var encoder = MiniLmEncoder.CreateDefault(backend, EncoderPrecision.Q8_0);
            return new ServeEmbedder(encoder, backend, encoder, $"{encoder.ModelVersion} on {backend.Name}");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            backend.Dispose();
            warn($"engine: MiniLM encoder not available ({e.Message}); ranking with the hashed bag-of-words embedder instead");
            var hashing = new HashingTextEmbedder();
            return new ServeEmbedder(hashing, null, null, hashing.ModelVersion);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _owned?.Dispose();
        _backend?.Dispose();
    }
}
