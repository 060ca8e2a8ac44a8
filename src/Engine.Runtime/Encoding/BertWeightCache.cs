using System.Runtime.InteropServices;
using Engine.Core.Gguf;
using Engine.Core.Quant;

namespace Engine.Runtime.Encoding;

/// <summary>
/// Converted encoder weights on disk, so the ONNX file is parsed once per machine: a GGUF file (Engine.Core's
/// writer and reader; memory-mapped on load, so the CPU backend runs straight from the page cache) named
/// <c>{model}.{sha256 of the ONNX, 16 hex}.{f32|q8_0}.gguf</c> under the cache directory.
/// <para>
/// Layout: tensors named as <see cref="BertTensorNames"/>, in ggml order (<c>[cols, rows]</c>); the six matrices
/// of each layer stored <c>[in, out]</c> (rows = outputs), in F32 or Q8_0 by <see cref="EncoderPrecision"/>, and
/// in Q8_0 files the word embedding table too (its rows are only gathered: 47 MB become 12 MB); position and
/// token-type tables, biases and LayerNorm parameters always F32. Metadata: <c>general.architecture = bert</c>,
/// <c>bert.*</c> hyper-parameters, the vocabulary as <c>tokenizer.ggml.tokens</c> (one string per id, as
/// vocab.txt's lines; <c>tokenizer.ggml.model = bert</c>), so a cache file alone is enough to run the encoder,
/// and the keys below, all checked on load: a file that does not match (other source hash, other
/// <see cref="FormatVersion"/>, truncated) is rebuilt, never trusted.
/// </para>
/// </summary>
public static class BertWeightCache
{
    /// <summary>Bumped whenever the layout above changes, so old cache files are rebuilt.</summary>
    public const int FormatVersion = 2; // 2: vocabulary in the file; Q8_0 word embeddings

    /// <summary>Environment variable naming the cache directory (default: <c>$XDG_CACHE_HOME/engine</c> or <c>~/.cache/engine</c>; LocalAppData on Windows).</summary>
    public const string CacheDirectoryVariable = "ENGINE_CACHE_DIR";

    public const string SourceHashKey = "engine.encoder.source_sha256";
    public const string FormatVersionKey = "engine.encoder.format_version";
    public const string PrecisionKey = "engine.encoder.precision";
    public const string TokensKey = "tokenizer.ggml.tokens";

    /// <summary>The per-user cache directory (created on first write).</summary>
    public static string DefaultDirectory()
    {
        string? dir = Environment.GetEnvironmentVariable(CacheDirectoryVariable);
        if (!string.IsNullOrEmpty(dir)) return dir;
        if (OperatingSystem.IsWindows())
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "engine", "cache");
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "engine");
    }

    /// <summary>Name of a precision in file names and model versions: <c>f32</c>, <c>q8_0</c>.</summary>
    public static string PrecisionName(EncoderPrecision precision) => precision switch
    {
        EncoderPrecision.F32 => "f32",
        EncoderPrecision.Q8_0 => "q8_0",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown precision"),
    };

    /// <summary>Where the converted file for this model and precision lives.</summary>
    public static string PathFor(string directory, string modelName, string sourceHash, EncoderPrecision precision) =>
        Path.Combine(directory, $"{modelName}.{sourceHash[..16]}.{PrecisionName(precision)}.gguf");

    /// <summary>
    /// Opens the cached file when it is there and matches; otherwise converts with <paramref name="readWeights"/>
    /// (called only then), writes the file atomically (a temporary name, then a rename) and opens it.
    /// </summary>
    public static GgufFile OpenOrConvert(string path, string modelName, string sourceHash, BertConfig config,
                                         EncoderPrecision precision, Func<Dictionary<string, OnnxTensor>> readWeights,
                                         IReadOnlyList<string> vocabulary)
    {
        if (File.Exists(path))
        {
            var file = TryOpenMatching(path, sourceHash, precision);
            if (file is not null) return file;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Write(temporary, modelName, sourceHash, config, precision, readWeights(), vocabulary);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
        return TryOpenMatching(path, sourceHash, precision)
               ?? throw new InvalidDataException($"{path}: the file just written does not read back");
    }

    /// <summary>
    /// The newest valid cache file for <paramref name="modelName"/> and <paramref name="precision"/> in
    /// <paramref name="directory"/>, whatever its source hash; null when there is none. For hosts that carry the
    /// converted file without the package it came from.
    /// </summary>
    public static GgufFile? OpenNewest(string directory, string modelName, EncoderPrecision precision)
    {
        if (!Directory.Exists(directory)) return null;
        var candidates = new DirectoryInfo(directory).GetFiles($"{modelName}.*.{PrecisionName(precision)}.gguf")
                                                     .OrderByDescending(f => f.LastWriteTimeUtc);
        foreach (var f in candidates)
        {
            var file = TryOpenMatching(f.FullName, sourceHash: null, precision);
            if (file is not null) return file;
        }
        return null;
    }

    /// <summary>The vocabulary stored in a cache file, one token per id.</summary>
    public static string[] ReadVocabulary(GgufFile file) => file.Metadata.GetArray<string>(TokensKey);

    private static GgufFile? TryOpenMatching(string path, string? sourceHash, EncoderPrecision precision)
    {
        GgufFile? file = null;
        try
        {
            file = GgufFile.Open(path);
            var m = file.Metadata;
            if ((sourceHash is null || m.GetStringOrNull(SourceHashKey) == sourceHash)
                && m.GetInteger(FormatVersionKey, -1) == FormatVersion
                && m.GetStringOrNull(PrecisionKey) == PrecisionName(precision)
                && m.Contains(TokensKey))
                return file;
        }
        catch (Exception e) when (e is GgufFormatException or IOException or InvalidDataException)
        {
            // unreadable or truncated: rebuilt below
        }
        file?.Dispose();
        return null;
    }

    /// <summary>Writes the tensors the encoder uses (<see cref="BertTensorNames"/>) as the class describes.</summary>
    public static void Write(string path, string modelName, string sourceHash, BertConfig config, EncoderPrecision precision,
                             IReadOnlyDictionary<string, OnnxTensor> tensors, IReadOnlyList<string> vocabulary)
    {
        if (vocabulary.Count != config.VocabSize) throw new InvalidDataException($"vocabulary has {vocabulary.Count} tokens, the model {config.VocabSize}");
        var names = new List<string>
        {
            BertTensorNames.WordEmbeddings, BertTensorNames.PositionEmbeddings, BertTensorNames.TokenTypeEmbeddings,
            BertTensorNames.EmbeddingNormWeight, BertTensorNames.EmbeddingNormBias,
        };
        var matrices = new HashSet<string>(StringComparer.Ordinal) { BertTensorNames.WordEmbeddings };
        for (int l = 0; l < config.Layers; l++)
            foreach (string m in BertTensorNames.LayerModules)
            {
                names.Add(BertTensorNames.Weight(l, m));
                names.Add(BertTensorNames.Bias(l, m));
                if (BertTensorNames.Matrices.Contains(m)) matrices.Add(BertTensorNames.Weight(l, m));
            }

        using var w = GgufWriter.Create(path);
        var md = w.Metadata;
        md.Set("general.architecture", GgufValue.Of("bert"));
        md.Set("general.name", GgufValue.Of(modelName));
        md.Set("general.file_type", GgufValue.Of(precision == EncoderPrecision.Q8_0 ? GgufQuantizer.FileTypeMostlyQ8_0 : 0u));
        md.Set("bert.context_length", GgufValue.Of((uint)config.MaxPositions));
        md.Set("bert.embedding_length", GgufValue.Of((uint)config.Hidden));
        md.Set("bert.feed_forward_length", GgufValue.Of((uint)config.FeedForward));
        md.Set("bert.block_count", GgufValue.Of((uint)config.Layers));
        md.Set("bert.attention.head_count", GgufValue.Of((uint)config.Heads));
        md.Set("bert.attention.layer_norm_epsilon", GgufValue.Of(config.LayerNormEps));
        md.Set("tokenizer.ggml.model", GgufValue.Of("bert"));
        md.Set(TokensKey, GgufValue.Of(vocabulary.ToArray()));
        md.Set(SourceHashKey, GgufValue.Of(sourceHash));
        md.Set(FormatVersionKey, GgufValue.Of(FormatVersion));
        md.Set(PrecisionKey, GgufValue.Of(PrecisionName(precision)));

        GgmlType TypeOf(string name) => precision == EncoderPrecision.Q8_0 && matrices.Contains(name) ? GgmlType.Q8_0 : GgmlType.F32;
        foreach (string name in names)
        {
            var t = tensors[name];
            long[] shape = t.Dims.Length == 1 ? [t.Dims[0]] : [t.Dims[1], t.Dims[0]];
            w.AddTensor(name, TypeOf(name), shape);
        }
        foreach (string name in names)
        {
            var t = tensors[name];
            if (TypeOf(name) == GgmlType.F32)
            {
                w.WriteTensor(name, MemoryMarshal.AsBytes(t.Data.AsSpan()));
                continue;
            }
            int rows = checked((int)t.Dims[0]), cols = checked((int)t.Dims[1]);
            int rowBytes = checked((int)GgmlTypeInfo.RowBytes(GgmlType.Q8_0, cols));
            var q = new byte[rows * rowBytes];
            for (int r = 0; r < rows; r++)
                Q8_0.QuantizeRow(t.Data.AsSpan(r * cols, cols), q.AsSpan(r * rowBytes, rowBytes));
            w.WriteTensor(name, q);
        }
        w.Finish();
    }
}
