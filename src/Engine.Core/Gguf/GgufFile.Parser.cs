using System.Buffers.Binary;
using System.Text;

namespace Engine.Core.Gguf;

public sealed unsafe partial class GgufFile
{
    /// <summary>
    /// Bounds-checked parser of the GGUF header. Every read checks the remaining length, every count
    /// is checked against the bytes that could hold it, so a corrupt file fails with a
    /// <see cref="GgufFormatException"/> and never with an overflow or an out-of-memory.
    /// </summary>
    private ref struct Parser
    {
        private readonly string _file;
        private readonly byte* _p;
        private readonly long _length;
        private long _pos;

        private Parser(string file, byte* p, long length)
        {
            _file = file;
            _p = p;
            _length = length;
            _pos = 0;
        }

        public readonly record struct Result(uint Version, GgufMetadata Metadata, IReadOnlyList<GgufTensorInfo> Tensors, int Alignment, long DataOffset);

        public static Result Parse(string file, byte* p, long length)
        {
            var r = new Parser(file, p, length);
            uint magic = r.U32("magic");
            if (magic != Magic)
                GgufFormatException.Throw(file, "magic", $"not a GGUF file (magic 0x{magic:X8}, expected 0x{Magic:X8} \"GGUF\")");
            uint version = r.U32("version");
            if (version is not (2 or 3))
            {
                string why = BinaryPrimitives.ReverseEndianness(version) is 2 or 3
                    ? "big-endian GGUF files are not supported"
                    : version == 1 ? "GGUF version 1 is not supported (only 2 and 3)" : "only versions 2 and 3 are supported";
                GgufFormatException.Throw(file, "version", $"version {version}: {why}");
            }
            ulong tensorCount = r.U64("tensor_count");
            ulong kvCount = r.U64("metadata_kv_count");
            // A KV pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 4 + 8.
            if (kvCount > (ulong)(length / 13))
                GgufFormatException.Throw(file, "metadata_kv_count", $"{kvCount} entries cannot fit in {length} bytes");
            if (tensorCount > (ulong)(length / 24))
                GgufFormatException.Throw(file, "tensor_count", $"{tensorCount} tensors cannot fit in {length} bytes");

            var metadata = new GgufMetadata(file);
            for (ulong i = 0; i < kvCount; i++)
            {
                string key = r.String($"metadata key #{i}");
                var type = (GgufValueType)r.U32($"{key}: type");
                metadata.AddFromFile(key, r.Value(key, type, depth: 0));
            }

            int alignment = DefaultAlignment;
            if (metadata.TryGet("general.alignment", out var alignValue))
            {
                if (alignValue.Value is not uint a)
                    throw new GgufFormatException(file, "general.alignment", $"expected uint32, found {alignValue.Type}");
                if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                    GgufFormatException.Throw(file, "general.alignment", $"{a} is not a power of two up to 1 MiB");
                alignment = (int)a;
            }

            var tensors = new GgufTensorInfo[tensorCount];
            for (ulong i = 0; i < tensorCount; i++)
            {
                string name = r.String($"tensor #{i} name");
                uint nDims = r.U32($"{name}: n_dims");
                if (nDims is 0 or > MaxDims)
                    GgufFormatException.Throw(file, name, $"n_dims {nDims} is outside 1..{MaxDims}");
                var shape = new long[nDims];
                long elements = 1;
                for (int d = 0; d < nDims; d++)
                {
                    ulong dim = r.U64($"{name}: dim {d}");
                    if (dim == 0 || dim > (ulong)length * 8)
                        GgufFormatException.Throw(file, name, $"dimension {d} is {dim}");
                    shape[d] = (long)dim;
                    if (elements > long.MaxValue / (long)dim)
                        GgufFormatException.Throw(file, name, "element count overflows");
                    elements *= (long)dim;
                }
                uint rawType = r.U32($"{name}: type");
                var type = (GgmlType)rawType;
                if (!Enum.IsDefined(type))
                    GgufFormatException.Throw(file, name, $"unknown tensor type {rawType}");
                ulong offset = r.U64($"{name}: offset");
                if (offset % (ulong)alignment != 0)
                    GgufFormatException.Throw(file, name, $"offset {offset} is not a multiple of the alignment {alignment}");
                tensors[i] = new GgufTensorInfo(name, shape, type, offset);
            }

            long dataOffset = (r._pos + alignment - 1) / alignment * alignment;
            if (tensorCount > 0 && dataOffset > length)
                GgufFormatException.Throw(file, "tensor data", $"data section would start at {dataOffset}, past the end of the file ({length} bytes)");
            long dataLength = length - dataOffset;
            foreach (var t in tensors)
            {
                if (!GgmlTypeInfo.IsSupported(t.Type)) continue; // named when the tensor is used
                if (t.Shape[0] % GgmlTypeInfo.BlockSize(t.Type) != 0)
                    GgufFormatException.Throw(file, t.Name, $"row length {t.Shape[0]} is not a multiple of the {t.Type} block size {GgmlTypeInfo.BlockSize(t.Type)}");
                // Sizes in this order cannot overflow: a row is at most 8 × length elements, and the row count
                // is checked against the data section before multiplying.
                long rowLength = t.Shape[0];
                long rowCount = t.ElementCount / rowLength;
                long rowBytes = rowLength / GgmlTypeInfo.BlockSize(t.Type) * GgmlTypeInfo.BlockBytes(t.Type);
                if (rowLength > int.MaxValue || rowCount > int.MaxValue)
                    GgufFormatException.Throw(file, t.Name, $"{rowCount} rows of {rowLength} elements: more than 2^31 rows or columns are not supported");
                if (t.Offset > (ulong)dataLength || rowCount > (dataLength - (long)t.Offset) / rowBytes)
                    GgufFormatException.Throw(file, t.Name, $"data at offset {t.Offset} ({rowCount} rows of {rowBytes} bytes) runs past the end of the file (data section is {dataLength} bytes): truncated file?");
            }
            return new Result(version, metadata, tensors, alignment, dataOffset);
        }

        private void Need(long bytes, string field)
        {
            if (bytes < 0 || bytes > _length - _pos)
                GgufFormatException.Throw(_file, field, $"needs {bytes} bytes at offset {_pos}, file ends at {_length}: truncated file?");
        }

        private uint U32(string field)
        {
            Need(4, field);
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(_p + _pos, 4));
            _pos += 4;
            return v;
        }

        private ulong U64(string field)
        {
            Need(8, field);
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_p + _pos, 8));
            _pos += 8;
            return v;
        }

        private ReadOnlySpan<byte> Bytes(long n, string field)
        {
            Need(n, field);
            var s = new ReadOnlySpan<byte>(_p + _pos, (int)n);
            _pos += n;
            return s;
        }

        private string String(string field)
        {
            ulong len = U64(field);
            if (len > int.MaxValue || (long)len > _length - _pos)
                GgufFormatException.Throw(_file, field, $"string length {len} runs past the end of the file");
            return Encoding.UTF8.GetString(Bytes((long)len, field));
        }

        private GgufValue Value(string key, GgufValueType type, int depth)
        {
            switch (type)
            {
                case GgufValueType.UInt8: return new(type, Bytes(1, key)[0]);
                case GgufValueType.Int8: return new(type, (sbyte)Bytes(1, key)[0]);
                case GgufValueType.UInt16: return new(type, BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, key)));
                case GgufValueType.Int16: return new(type, BinaryPrimitives.ReadInt16LittleEndian(Bytes(2, key)));
                case GgufValueType.UInt32: return new(type, U32(key));
                case GgufValueType.Int32: return new(type, (int)U32(key));
                case GgufValueType.Float32: return new(type, BitConverter.Int32BitsToSingle((int)U32(key)));
                case GgufValueType.UInt64: return new(type, U64(key));
                case GgufValueType.Int64: return new(type, (long)U64(key));
                case GgufValueType.Float64: return new(type, BitConverter.Int64BitsToDouble((long)U64(key)));
                case GgufValueType.Bool:
                    byte b = Bytes(1, key)[0];
                    if (b > 1) GgufFormatException.Throw(_file, key, $"bool value {b} is neither 0 nor 1");
                    return new(type, b == 1);
                case GgufValueType.String: return new(type, String(key));
                case GgufValueType.Array:
                    if (depth >= 4) GgufFormatException.Throw(_file, key, "arrays nested deeper than 4 levels are not supported");
                    var elementType = (GgufValueType)U32(key + ": array type");
                    ulong count = U64(key + ": array length");
                    long minSize = MinSize(key, elementType);
                    if (count > (ulong)Array.MaxLength)
                        GgufFormatException.Throw(_file, key, $"array of {count} elements is larger than supported ({Array.MaxLength})");
                    if (count > (ulong)((_length - _pos) / minSize))
                        GgufFormatException.Throw(_file, key, $"array of {count} {elementType} cannot fit in the {_length - _pos} bytes left");
                    return new(type, ReadArray(key, elementType, (int)count, depth), elementType);
                default:
                    GgufFormatException.Throw(_file, key, $"unknown metadata value type {(uint)type}");
                    return null!;
            }
        }

        private long MinSize(string key, GgufValueType t) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw new GgufFormatException(_file, key, $"unknown array element type {(uint)t}"),
        };

        private object ReadArray(string key, GgufValueType t, int n, int depth)
        {
            switch (t)
            {
                case GgufValueType.UInt8: return Bytes(n, key).ToArray();
                case GgufValueType.Int8: { var a = new sbyte[n]; Bytes(n, key).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan())); return a; }
                case GgufValueType.UInt16: { var a = new ushort[n]; for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, key)); return a; }
                case GgufValueType.Int16: { var a = new short[n]; for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadInt16LittleEndian(Bytes(2, key)); return a; }
                case GgufValueType.UInt32: { var a = new uint[n]; for (int i = 0; i < n; i++) a[i] = U32(key); return a; }
                case GgufValueType.Int32: { var a = new int[n]; for (int i = 0; i < n; i++) a[i] = (int)U32(key); return a; }
                case GgufValueType.Float32: { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = BitConverter.Int32BitsToSingle((int)U32(key)); return a; }
                case GgufValueType.UInt64: { var a = new ulong[n]; for (int i = 0; i < n; i++) a[i] = U64(key); return a; }
                case GgufValueType.Int64: { var a = new long[n]; for (int i = 0; i < n; i++) a[i] = (long)U64(key); return a; }
                case GgufValueType.Float64: { var a = new double[n]; for (int i = 0; i < n; i++) a[i] = BitConverter.Int64BitsToDouble((long)U64(key)); return a; }
                case GgufValueType.Bool:
                {
                    var a = new bool[n];
                    var src = Bytes(n, key);
                    for (int i = 0; i < n; i++)
                    {
                        if (src[i] > 1) GgufFormatException.Throw(_file, key, $"bool value {src[i]} at index {i} is neither 0 nor 1");
                        a[i] = src[i] == 1;
                    }
                    return a;
                }
                case GgufValueType.String: { var a = new string[n]; for (int i = 0; i < n; i++) a[i] = String(key); return a; }
                case GgufValueType.Array:
                {
                    var a = new GgufValue[n];
                    for (int i = 0; i < n; i++) a[i] = Value(key, GgufValueType.Array, depth + 1);
                    return a;
                }
                default:
                    throw new GgufFormatException(_file, key, $"unknown array element type {(uint)t}");
            }
        }
    }
}
