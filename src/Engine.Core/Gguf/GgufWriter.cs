using System.Text;

namespace Engine.Core.Gguf;

/// <summary>
/// Writes a GGUF file (version 3 by default, or 2; little-endian) as weights/FORMAT.md specifies,
/// streaming: tensor data goes to the file tensor by tensor (and in as many pieces per tensor as the
/// caller likes), so a model never has to be held in memory.
/// </summary>
/// <remarks>
/// Use in three phases:
/// <list type="number">
/// <item>fill <see cref="Metadata"/> and declare every tensor with <see cref="AddTensor"/> (name, type, shape);</item>
/// <item>write each tensor's data, in the order declared, with <see cref="WriteTensor"/> (whole tensor) or
/// <see cref="WriteTensorData"/> (pieces; a tensor is complete when its <see cref="GgufTensorInfo.ByteSize"/>
/// bytes have arrived, and the next piece starts the next tensor). The header, tensor infos and
/// padding are written before the first data byte (or by <see cref="WriteHeader"/>);</item>
/// <item><see cref="Finish"/>, which checks every tensor is complete and flushes.</item>
/// </list>
/// Tensor offsets are assigned in declaration order, each aligned to <c>general.alignment</c>
/// (32 when the key is absent), and the data section starts at an aligned file offset; padding is zero bytes.
/// A writer made by <see cref="Create"/> that is disposed before <see cref="Finish"/> deletes its partial file.
/// </remarks>
public sealed class GgufWriter : IDisposable
{
    /// <summary>Deepest array nesting written (an array of arrays of arrays…), as the reader accepts.</summary>
    public const int MaxArrayDepth = 4;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly string? _path;
    private List<GgufTensorInfo> _tensors = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly byte[] _scratch = new byte[8];
    private bool _headerWritten;
    private bool _finished;
    private bool _disposed;
    private int _alignment;
    private long _position;          // bytes written to the stream by this writer
    private long _dataStart;         // file offset of the data section
    private int _current;            // index of the tensor receiving data
    private long _currentWritten;    // bytes of it written so far

    /// <summary>Writes to <paramref name="stream"/> from its current position.</summary>
    /// <param name="stream">A writable stream; it need not be seekable.</param>
    /// <param name="version">GGUF version to write: 3 (default) or 2 (same layout, older number).</param>
    /// <param name="leaveOpen">Leave the stream open when the writer is disposed.</param>
    public GgufWriter(Stream stream, uint version = 3, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("stream is not writable", nameof(stream));
        if (version is not (2 or 3)) throw new ArgumentOutOfRangeException(nameof(version), version, "only GGUF versions 2 and 3 are written");
        _stream = stream;
        _leaveOpen = leaveOpen;
        Version = version;
        Metadata = new GgufMetadata("<writer>");
    }

    private GgufWriter(FileStream stream, string path, uint version) : this(stream, version, leaveOpen: false) => _path = path;

    /// <summary>Creates (or overwrites) the file at <paramref name="path"/>.</summary>
    public static GgufWriter Create(string path, uint version = 3)
    {
        var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        try
        {
            return new GgufWriter(fs, path, version);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>GGUF version written (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>The key/value metadata to write, in order. Frozen once the header is written.</summary>
    public GgufMetadata Metadata { get; }

    /// <summary>
    /// Alignment of the data section and of each tensor: <c>general.alignment</c> from <see cref="Metadata"/>,
    /// or <see cref="GgufFile.DefaultAlignment"/> (32). Setting it writes the key.
    /// </summary>
    public int Alignment
    {
        get => _headerWritten ? _alignment : ResolveAlignment();
        set
        {
            ThrowIfHeaderWritten();
            if (value <= 0 || (value & (value - 1)) != 0 || value > 1 << 20)
                throw new ArgumentOutOfRangeException(nameof(value), value, "alignment must be a power of two up to 1 MiB");
            Metadata.Set("general.alignment", GgufValue.Of((uint)value));
        }
    }

    /// <summary>Tensors declared so far, in file order. Their offsets are final once the header is written.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;

    /// <summary>The tensor the next <see cref="WriteTensorData"/> bytes belong to (null when all are complete).</summary>
    public GgufTensorInfo? CurrentTensor => _headerWritten && _current < _tensors.Count ? _tensors[_current] : null;

    /// <summary>Bytes written so far (header, padding and data).</summary>
    public long BytesWritten => _position;

    /// <summary>Total size of the file once finished (known after all tensors are declared).</summary>
    public long ExpectedLength
    {
        get
        {
            if (!_headerWritten) throw new InvalidOperationException("the file length is known once the header is written");
            if (_tensors.Count == 0) return _dataStart;
            var last = _tensors[^1];
            return _dataStart + AlignUp((long)last.Offset + last.ByteSize, _alignment);
        }
    }

    /// <summary>
    /// Declares a tensor. <paramref name="shape"/> lists dimensions fastest-varying first (ggml order):
    /// a matrix of <c>rows</c> rows of <c>cols</c> elements is <c>[cols, rows]</c>. The row length must be a
    /// multiple of the type's block size (32 for Q8_0).
    /// </summary>
    /// <returns>The tensor info; its offset is assigned when the header is written.</returns>
    public GgufTensorInfo AddTensor(string name, GgmlType type, ReadOnlySpan<long> shape)
    {
        ThrowIfHeaderWritten();
        ArgumentNullException.ThrowIfNull(name);
        if (!_names.Add(name)) throw new ArgumentException($"tensor '{name}' is declared twice", nameof(name));
        if (!GgmlTypeInfo.IsSupported(type)) throw new ArgumentException($"{name}: tensor type {type} is not supported (F32, F16, BF16, Q8_0)", nameof(type));
        if (shape.Length is 0 or > GgufFile.MaxDims) throw new ArgumentException($"{name}: {shape.Length} dimensions, expected 1..{GgufFile.MaxDims}", nameof(shape));
        foreach (long d in shape)
            if (d <= 0) throw new ArgumentException($"{name}: dimension {d} is not positive", nameof(shape));
        if (shape[0] % GgmlTypeInfo.BlockSize(type) != 0)
            throw new ArgumentException($"{name}: row length {shape[0]} is not a multiple of the {type} block size {GgmlTypeInfo.BlockSize(type)}", nameof(shape));
        var info = new GgufTensorInfo(name, shape.ToArray(), type, 0);
        _ = checked(info.ElementCount * GgmlTypeInfo.BlockBytes(type)); // reject sizes that overflow
        _tensors.Add(info);
        return info;
    }

    /// <summary>
    /// Writes the header, metadata, tensor infos and the padding up to the data section, fixing every
    /// tensor's offset. Called automatically by the first data write or by <see cref="Finish"/>.
    /// </summary>
    public void WriteHeader()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_headerWritten) return;
        _alignment = ResolveAlignment();

        // A new list, so that a caller enumerating Tensors while the first write triggers the header is not disturbed.
        long offset = 0;
        var placed = new List<GgufTensorInfo>(_tensors.Count);
        foreach (var t in _tensors)
        {
            placed.Add(t with { Offset = (ulong)offset });
            offset = AlignUp(offset + t.ByteSize, _alignment);
        }
        _tensors = placed;

        U32(GgufFile.Magic);
        U32(Version);
        U64((ulong)_tensors.Count);
        U64((ulong)Metadata.Count);
        foreach (var (key, value) in Metadata.Entries)
        {
            Str(key);
            U32((uint)value.Type);
            WriteValue(key, value, depth: 0);
        }
        foreach (var t in _tensors)
        {
            Str(t.Name);
            U32((uint)t.Shape.Length);
            foreach (long d in t.Shape) U64((ulong)d);
            U32((uint)t.Type);
            U64(t.Offset);
        }
        Pad();
        _dataStart = _position;
        _headerWritten = true;
        _current = 0;
        _currentWritten = 0;
    }

    /// <summary>Writes the whole data of tensor <paramref name="name"/>, which must be the next one declared.</summary>
    public void WriteTensor(string name, ReadOnlySpan<byte> data)
    {
        WriteHeader();
        var t = CurrentTensor ?? throw new InvalidOperationException($"tensor '{name}': all declared tensors are already written");
        if (t.Name != name) throw new InvalidOperationException($"tensor '{name}' written out of order: '{t.Name}' is next");
        if (_currentWritten != 0) throw new InvalidOperationException($"tensor '{name}' is partly written already");
        if (data.Length != t.ByteSize) throw new ArgumentException($"tensor '{name}' takes {t.ByteSize} bytes, got {data.Length}", nameof(data));
        WriteTensorData(data);
    }

    /// <summary>
    /// Appends tensor data: the bytes fill the current tensor, then the next ones, in declaration order,
    /// with alignment padding inserted between tensors. More bytes than the tensors take is an error.
    /// </summary>
    public void WriteTensorData(ReadOnlySpan<byte> data)
    {
        WriteHeader();
        while (!data.IsEmpty)
        {
            if (_current >= _tensors.Count) throw new InvalidOperationException($"{data.Length} bytes of tensor data beyond the last declared tensor");
            var t = _tensors[_current];
            int n = (int)Math.Min(data.Length, t.ByteSize - _currentWritten);
            _stream.Write(data[..n]);
            _position += n;
            _currentWritten += n;
            data = data[n..];
            if (_currentWritten == t.ByteSize)
            {
                Pad();
                _current++;
                _currentWritten = 0;
            }
        }
    }

    /// <summary>Checks every declared tensor was written in full and flushes. The file is then complete.</summary>
    public void Finish()
    {
        WriteHeader();
        if (_current < _tensors.Count)
            throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' has {_currentWritten} of its {_tensors[_current].ByteSize} bytes; {_tensors.Count - _current} tensor(s) incomplete");
        _stream.Flush();
        _finished = true;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_leaveOpen) _stream.Dispose();
        if (!_finished && _path is not null)
        {
            try { File.Delete(_path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static long AlignUp(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    private int ResolveAlignment()
    {
        if (!Metadata.TryGet("general.alignment", out var v)) return GgufFile.DefaultAlignment;
        if (v.Value is not uint a || v.Type != GgufValueType.UInt32)
            throw new InvalidOperationException($"general.alignment must be a uint32, found {v.Type}");
        if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
            throw new InvalidOperationException($"general.alignment {a} is not a power of two up to 1 MiB");
        return (int)a;
    }

    private void ThrowIfHeaderWritten()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_headerWritten) throw new InvalidOperationException("the header is already written: declare tensors and metadata before writing data");
    }

    private void Pad()
    {
        long target = AlignUp(_position, _alignment);
        Span<byte> zeros = stackalloc byte[256];
        zeros.Clear();
        while (_position < target)
        {
            int n = (int)Math.Min(zeros.Length, target - _position);
            _stream.Write(zeros[..n]);
            _position += n;
        }
    }

    private void Raw(ReadOnlySpan<byte> bytes)
    {
        _stream.Write(bytes);
        _position += bytes.Length;
    }

    private void U8(byte v) { _scratch[0] = v; Raw(_scratch.AsSpan(0, 1)); }
    private void U16(ushort v) { System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(_scratch, v); Raw(_scratch.AsSpan(0, 2)); }
    private void U32(uint v) { System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(_scratch, v); Raw(_scratch.AsSpan(0, 4)); }
    private void U64(ulong v) { System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(_scratch, v); Raw(_scratch.AsSpan(0, 8)); }

    private void Str(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        U64((ulong)n);
        if (n <= 512)
        {
            Span<byte> buf = stackalloc byte[n];
            Encoding.UTF8.GetBytes(s, buf);
            Raw(buf);
        }
        else
        {
            Raw(Encoding.UTF8.GetBytes(s));
        }
    }

    private static void Check(bool ok, string key, string problem)
    {
        if (!ok) throw new ArgumentException($"metadata '{key}': {problem}");
    }

    /// <summary>Writes a value's payload (its type tag is already written).</summary>
    private void WriteValue(string key, GgufValue v, int depth)
    {
        object o = v.Value;
        string bad = $"value of CLR type {o?.GetType().Name ?? "null"} does not match GGUF type {v.Type}";
        switch (v.Type)
        {
            case GgufValueType.UInt8: Check(o is byte, key, bad); U8((byte)o!); break;
            case GgufValueType.Int8: Check(o is sbyte, key, bad); U8((byte)(sbyte)o!); break;
            case GgufValueType.UInt16: Check(o is ushort, key, bad); U16((ushort)o!); break;
            case GgufValueType.Int16: Check(o is short, key, bad); U16((ushort)(short)o!); break;
            case GgufValueType.UInt32: Check(o is uint, key, bad); U32((uint)o!); break;
            case GgufValueType.Int32: Check(o is int, key, bad); U32((uint)(int)o!); break;
            case GgufValueType.Float32: Check(o is float, key, bad); U32((uint)BitConverter.SingleToInt32Bits((float)o!)); break;
            case GgufValueType.Bool: Check(o is bool, key, bad); U8((bool)o! ? (byte)1 : (byte)0); break;
            case GgufValueType.String: Check(o is string, key, bad); Str((string)o!); break;
            case GgufValueType.UInt64: Check(o is ulong, key, bad); U64((ulong)o!); break;
            case GgufValueType.Int64: Check(o is long, key, bad); U64((ulong)(long)o!); break;
            case GgufValueType.Float64: Check(o is double, key, bad); U64((ulong)BitConverter.DoubleToInt64Bits((double)o!)); break;
            case GgufValueType.Array: WriteArray(key, v, depth); break;
            default: throw new ArgumentException($"metadata '{key}': unknown GGUF value type {(uint)v.Type}");
        }
    }

    private void WriteArray(string key, GgufValue v, int depth)
    {
        Check(depth < MaxArrayDepth, key, $"arrays nested deeper than {MaxArrayDepth} levels");
        Check(v.Value is Array, key, $"array value of CLR type {v.Value?.GetType().Name ?? "null"}");
        var array = (Array)v.Value!;
        var elementClr = GgufValue.ClrTypeOf(v.ElementType);
        Check(array.GetType().GetElementType() == elementClr, key,
            $"array of CLR type {array.GetType().Name} does not match element type {v.ElementType} ({elementClr.Name}[])");
        U32((uint)v.ElementType);
        U64((ulong)array.Length);
        switch (array)
        {
            case byte[] a: Raw(a); break;
            case sbyte[] a: Raw(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan())); break;
            case ushort[] a: foreach (var x in a) U16(x); break;
            case short[] a: foreach (var x in a) U16((ushort)x); break;
            case uint[] a: foreach (var x in a) U32(x); break;
            case int[] a: foreach (var x in a) U32((uint)x); break;
            case float[] a: foreach (var x in a) U32((uint)BitConverter.SingleToInt32Bits(x)); break;
            case bool[] a: foreach (var x in a) U8(x ? (byte)1 : (byte)0); break;
            case string[] a:
                foreach (var x in a)
                {
                    if (x is null) throw new ArgumentException($"metadata '{key}': null string in a string array");
                    Str(x);
                }
                break;
            case ulong[] a: foreach (var x in a) U64(x); break;
            case long[] a: foreach (var x in a) U64((ulong)x); break;
            case double[] a: foreach (var x in a) U64((ulong)BitConverter.DoubleToInt64Bits(x)); break;
            case GgufValue[] a:
                foreach (var x in a)
                {
                    Check(x is not null && x.Type == GgufValueType.Array, key, "an array of arrays holds a non-array element");
                    WriteArray(key, x!, depth + 1);
                }
                break;
            default: throw new ArgumentException($"metadata '{key}': unsupported array type {array.GetType().Name}");
        }
    }
}
