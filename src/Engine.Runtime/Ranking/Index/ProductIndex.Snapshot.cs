using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Engine.Core.Backend;

namespace Engine.Runtime.Ranking;

/// <summary>Snapshot to disk and reload; the format is specified in SNAPSHOT.md beside this file.</summary>
public sealed partial class ProductIndex
{
    /// <summary>File magic, 8 bytes: "ENGPIDX" and a zero.</summary>
    private static ReadOnlySpan<byte> Magic => "ENGPIDX\0"u8;

    /// <summary>Format version written (2: records carry the residual layer for rescoring); Load also reads version 1.</summary>
    public const int SnapshotVersion = 2;

    /// <summary>Version 1 records have no residual layer; Load reads them with a zero residual (no rescoring precision).</summary>
    private const int SnapshotVersionWithoutResidual = 1;

    /// <summary>Longest product id, in UTF-8 bytes (stored with a u16 length).</summary>
    public const int MaxIdBytes = ushort.MaxValue;

    /// <summary>Largest dimension a snapshot may declare (a sanity bound against corrupt headers).</summary>
    private const int MaxSnapshotDimensions = 1 << 16;

    private const int HeaderBytes = 32;
    private const int HashBytes = 32; // SHA-256

    /// <summary>
    /// Writes every product (id, facets, int8 vector and scale, residual layer and its scale) to <paramref name="path"/>, through a temporary file
    /// renamed over the target, so a crash never leaves a half-written snapshot under that name. Runs under the
    /// read lock: searches continue, writes wait.
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string temp = path + ".tmp";
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var writer = new HashingWriter(file, hash);
                Span<byte> header = stackalloc byte[HeaderBytes];
                header.Clear();
                Magic.CopyTo(header);
                BinaryPrimitives.WriteInt32LittleEndian(header[8..], SnapshotVersion);
                BinaryPrimitives.WriteInt32LittleEndian(header[12..], Dimensions);
                BinaryPrimitives.WriteInt32LittleEndian(header[16..], _slotOf.Count);
                BinaryPrimitives.WriteInt64LittleEndian(header[20..], _version);
                writer.Write(header);

                const int block = 1024;
                var values = new sbyte[block * Dimensions];
                var scales = new float[block];
                var record = new byte[2 + MaxIdBytes + 9 + 4];
                for (int start = 0; start < _highWater; start += block)
                {
                    int n = Math.Min(block, _highWater - start);
                    _store.ReadRows(start, n, values, scales);
                    for (int i = 0; i < n; i++)
                    {
                        int slot = start + i;
                        string? id = _ids[slot];
                        if (id is null) continue;
                        int len = System.Text.Encoding.UTF8.GetBytes(id, record.AsSpan(2));
                        BinaryPrimitives.WriteUInt16LittleEndian(record, (ushort)len);
                        int at = 2 + len;
                        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(at), _category[slot]);
                        BinaryPrimitives.WriteSingleLittleEndian(record.AsSpan(at + 4), _price[slot]);
                        record[at + 8] = (byte)(((_inStock[slot >> 6] >> (slot & 63)) & 1) != 0 ? 1 : 0);
                        BinaryPrimitives.WriteSingleLittleEndian(record.AsSpan(at + 9), scales[i]);
                        writer.Write(record.AsSpan(0, at + 13));
                        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan(i * Dimensions, Dimensions)));
                        BinaryPrimitives.WriteSingleLittleEndian(record, _residualScale[slot]);
                        writer.Write(record.AsSpan(0, 4));
                        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_residual.AsSpan(slot * Dimensions, Dimensions)));
                    }
                }
                file.Write(hash.GetHashAndReset());
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>
    /// Reads a snapshot written by <see cref="Save"/> into a new index on <paramref name="scanner"/>. A file that is not a
    /// snapshot, of an unknown version, truncated, or whose checksum does not match throws <see cref="InvalidDataException"/>
    /// naming the file and the field; nothing is returned half-loaded (the partial index is disposed).
    /// </summary>
    public static ProductIndex Load(string path, IVectorScanner scanner)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(scanner);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long length = file.Length;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new HashingReader(file, hash, path);
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (length < HeaderBytes + HashBytes) throw Invalid(path, $"{length} bytes is shorter than a header and a checksum");
        reader.Read(header, "header");
        if (!header[..8].SequenceEqual(Magic)) throw Invalid(path, "magic: not a product index snapshot");
        int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != SnapshotVersion && version != SnapshotVersionWithoutResidual)
            throw Invalid(path, $"version {version} (this build reads {SnapshotVersionWithoutResidual} and {SnapshotVersion})");
        bool hasResidual = version >= 2;
        int dims = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        if (dims < 1 || dims > MaxSnapshotDimensions) throw Invalid(path, $"dimensions {dims}");
        int count = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        long minRecord = 2 + 1 + 13 + dims + (hasResidual ? 4 + dims : 0);
        if (count < 0 || count > (length - HeaderBytes - HashBytes) / minRecord) throw Invalid(path, $"count {count} does not fit in {length} bytes");
        long savedVersion = BinaryPrimitives.ReadInt64LittleEndian(header[20..]);

        var index = new ProductIndex(dims, scanner, count) { LoadedWithoutResidual = !hasResidual };
        try
        {
            var record = new byte[MaxIdBytes];
            var values = new sbyte[dims];
            var residual = new sbyte[dims]; // stays zero for version 1
            Span<byte> fixedPart = stackalloc byte[13];
            Span<byte> len2 = stackalloc byte[2];
            for (int i = 0; i < count; i++)
            {
                reader.Read(len2, $"record {i} id length");
                int len = BinaryPrimitives.ReadUInt16LittleEndian(len2);
                if (len == 0) throw Invalid(path, $"record {i}: empty id");
                reader.Read(record.AsSpan(0, len), $"record {i} id");
                string id;
                try { id = new UTF8Encoding(false, true).GetString(record, 0, len); }
                catch (DecoderFallbackException) { throw Invalid(path, $"record {i}: id is not UTF-8"); }
                reader.Read(fixedPart, $"record {i} facets");
                var facets = new ProductFacets(
                    BinaryPrimitives.ReadInt32LittleEndian(fixedPart),
                    BinaryPrimitives.ReadSingleLittleEndian(fixedPart[4..]),
                    fixedPart[8] switch { 0 => false, 1 => true, _ => throw Invalid(path, $"record {i}: in-stock byte {fixedPart[8]}") });
                float scale = BinaryPrimitives.ReadSingleLittleEndian(fixedPart[9..]);
                if (!float.IsFinite(facets.Price) || facets.Price < 0) throw Invalid(path, $"record {i}: price {facets.Price}");
                if (!float.IsFinite(scale) || scale < 0) throw Invalid(path, $"record {i}: scale {scale}");
                reader.Read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), $"record {i} vector");
                float residualScale = 0;
                if (hasResidual)
                {
                    reader.Read(fixedPart[..4], $"record {i} residual scale");
                    residualScale = BinaryPrimitives.ReadSingleLittleEndian(fixedPart);
                    if (!float.IsFinite(residualScale) || residualScale < 0) throw Invalid(path, $"record {i}: residual scale {residualScale}");
                    reader.Read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(residual.AsSpan()), $"record {i} residual");
                }
                if (index._slotOf.ContainsKey(id)) throw Invalid(path, $"record {i}: duplicate id {id}");
                index.Put(id, values, scale, residual, residualScale, facets);
            }
            Span<byte> stored = stackalloc byte[HashBytes];
            reader.ReadUnhashed(stored, "checksum");
            if (file.Position != length) throw Invalid(path, $"{length - file.Position} bytes after the checksum");
            if (!stored.SequenceEqual(hash.GetHashAndReset())) throw Invalid(path, "checksum: SHA-256 does not match the contents");
            index._version = savedVersion;
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>True when this index was loaded from a version-1 snapshot (no residual layer: rescoring cannot refine those rows).</summary>
    internal bool LoadedWithoutResidual { get; private set; }

    private static InvalidDataException Invalid(string path, string what) => new($"{path}: corrupt product index snapshot: {what}");

    /// <summary>Writes through to the file and the hash.</summary>
    private readonly struct HashingWriter(Stream stream, IncrementalHash hash)
    {
        public void Write(ReadOnlySpan<byte> bytes)
        {
            stream.Write(bytes);
            hash.AppendData(bytes);
        }
    }

    /// <summary>Reads exactly, hashing what it reads; running short is a truncated file.</summary>
    private readonly struct HashingReader(Stream stream, IncrementalHash hash, string path)
    {
        public void Read(Span<byte> into, string field)
        {
            ReadUnhashed(into, field);
            hash.AppendData(into);
        }

        public void ReadUnhashed(Span<byte> into, string field)
        {
            try { stream.ReadExactly(into); }
            catch (EndOfStreamException) { throw Invalid(path, $"truncated in {field}"); }
        }
    }
}
