using System.IO.MemoryMappedFiles;
using Engine.Core.Tensors;

namespace Engine.Core.Gguf;

/// <summary>
/// A GGUF file (versions 2 and 3, little-endian), memory-mapped. The header and metadata are parsed
/// into managed objects; tensor data stays in the mapping and is handed out as <see cref="TensorView"/>s,
/// never copied. Every inconsistency is reported as a <see cref="GgufFormatException"/>.
/// The layout is specified in weights/FORMAT.md.
/// </summary>
public sealed unsafe partial class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Default of <c>general.alignment</c> (llama.cpp GGUF_DEFAULT_ALIGNMENT).</summary>
    public const int DefaultAlignment = 32;

    /// <summary>ggml's GGML_MAX_DIMS: a tensor has at most 4 dimensions.</summary>
    public const int MaxDims = 4;

    private readonly MemoryMappedFile? _mmf;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;
    private bool _disposed;

    private GgufFile(string path, MemoryMappedFile? mmf, MemoryMappedViewAccessor? view, byte* basePtr, long length)
    {
        Path = path;
        _mmf = mmf;
        _view = view;
        _base = basePtr;
        Length = length;
        var parsed = Parser.Parse(path, basePtr, length);
        Version = parsed.Version;
        Metadata = parsed.Metadata;
        Tensors = parsed.Tensors;
        Alignment = parsed.Alignment;
        DataOffset = parsed.DataOffset;
        _tensorsByName = new(StringComparer.Ordinal);
        foreach (var t in Tensors)
            if (!_tensorsByName.TryAdd(t.Name, t))
                GgufFormatException.Throw(path, t.Name, "duplicate tensor name");
    }

    /// <summary>Opens and memory-maps a GGUF file. Throws <see cref="GgufFormatException"/> on any format problem.</summary>
    public static GgufFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Length < 24) GgufFormatException.Throw(path, "header", $"file is {info.Length} bytes, shorter than a GGUF header (24)");
        var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            try
            {
                return new GgufFile(path, mmf, view, p, info.Length);
            }
            catch
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                throw;
            }
        }
        catch
        {
            view?.Dispose();
            mmf.Dispose();
            throw;
        }
    }

    /// <summary>Parses a GGUF image held in native memory that the caller keeps alive (tests, fuzzing).</summary>
    public static GgufFile FromMemory(byte* data, long length, string name = "<memory>")
    {
        if (length < 24) GgufFormatException.Throw(name, "header", $"file is {length} bytes, shorter than a GGUF header (24)");
        return new GgufFile(name, null, null, data, length);
    }

    public string Path { get; }
    public long Length { get; }

    /// <summary>GGUF version (2 or 3).</summary>
    public uint Version { get; }

    public GgufMetadata Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Alignment of the data section and of every tensor offset.</summary>
    public int Alignment { get; }

    /// <summary>Absolute file offset of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>The architecture named by <c>general.architecture</c>.</summary>
    public string Architecture => Metadata.GetString("general.architecture");

    public bool HasTensor(string name) => _tensorsByName.ContainsKey(name);

    public GgufTensorInfo GetTensorInfo(string name) =>
        _tensorsByName.TryGetValue(name, out var t) ? t : throw new GgufFormatException(Path, name, "missing tensor");

    /// <summary>A view of a tensor's data in the mapping. Fails for types we cannot compute with.</summary>
    public TensorView GetTensor(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var t = GetTensorInfo(name);
        if (!GgmlTypeInfo.IsSupported(t.Type))
            GgufFormatException.Throw(Path, name, $"unsupported tensor type {t.Type} (supported: F32, F16, BF16, Q8_0)");
        return new TensorView(t.Name, t.Type, t.Shape, _base + DataOffset + (long)t.Offset);
    }

    public TensorView? TryGetTensor(string name) => HasTensor(name) ? GetTensor(name) : null;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _mmf?.Dispose();
    }
}
