using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using MemoryPack;

namespace Engine.Protocol;

/// <summary>
/// Walks a body against its message schema and checks every length before MemoryPack reads it.
/// MemoryPack trusts lengths from the wire: a negative member length or a string header of
/// int.MinValue makes it read outside the buffer (an AccessViolation that kills the process, found
/// by <c>FuzzTests</c>). So the server never hands a body to MemoryPack before this validator passed it.
/// It checks: object headers (member count ≤ 249, null only where allowed), version-tolerant member
/// lengths (non-negative, within the body, each value exactly filling its length), string and
/// collection headers (≥ -1, within the body; a UTF-8 string's UTF-16 length -1 or at most its byte count).
/// </summary>
public static class BodyValidator
{
    private enum Kind { Fixed, String, Object, FixedArray, StringArray, ObjectArray }

    private sealed record Member(Kind Kind, int Size, Schema? Element);

    private sealed class Schema
    {
        public required string Name { get; init; }
        public required Member[] Members { get; init; }
    }

    private static readonly ConcurrentDictionary<Type, Schema> Schemas = new();

    /// <summary>Throws <see cref="ProtocolException"/> (BadBody) unless <paramref name="body"/> is a well-formed <paramref name="type"/>.</summary>
    public static void Validate(Type type, in ReadOnlySequence<byte> body)
    {
        Schema schema = SchemaOf(type);
        if (body.IsSingleSegment)
        {
            Check(schema, body.FirstSpan);
            return;
        }
        // Multi-segment bodies (a frame split across pipe segments) are linearised for the walk only;
        // bodies are bounded by the maximum frame size.
        byte[] rented = ArrayPool<byte>.Shared.Rent((int)body.Length);
        try
        {
            body.CopyTo(rented);
            Check(schema, rented.AsSpan(0, (int)body.Length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static void Check(Schema schema, ReadOnlySpan<byte> span)
    {
        int offset = 0;
        if (!TryObject(schema, span, ref offset, allowNull: false, depth: 0) || offset != span.Length)
            throw new ProtocolException(ErrorCode.BadBody, $"The {schema.Name} body is malformed (lengths do not match the message layout).");
    }

    private static bool TryObject(Schema schema, ReadOnlySpan<byte> s, ref int o, bool allowNull, int depth)
    {
        if (depth > 8 || o >= s.Length) return false;
        byte count = s[o++];
        if (count == 255) return allowNull;
        if (count > 249) return false;
        Span<int> lengths = count <= 64 ? stackalloc int[count] : new int[count];
        long total = 0;
        for (int i = 0; i < count; i++)
        {
            if (!TryVarInt(s, ref o, out long length) || length < 0 || length > s.Length) return false;
            lengths[i] = (int)Math.Min(length, int.MaxValue);
            total += length;
        }
        if (total > s.Length - o) return false;
        for (int i = 0; i < count; i++)
        {
            int end = o + lengths[i];
            if (i < schema.Members.Length && lengths[i] != 0)
            {
                ReadOnlySpan<byte> value = s[..end];
                if (!TryMember(schema.Members[i], value, ref o, depth) || o != end) return false;
            }
            o = end;
        }
        return true;
    }

    private static bool TryMember(Member m, ReadOnlySpan<byte> s, ref int o, int depth)
    {
        switch (m.Kind)
        {
            case Kind.Fixed: return Skip(s, ref o, m.Size);
            case Kind.String: return TryString(s, ref o);
            case Kind.Object: return TryObject(m.Element!, s, ref o, allowNull: true, depth + 1);
        }
        if (!TryInt(s, ref o, out int n)) return false;
        if (n == -1) return true;
        if (n < 0 || n > s.Length - o) return false; // every element takes at least one byte
        switch (m.Kind)
        {
            case Kind.FixedArray: return Skip(s, ref o, (long)n * m.Size);
            case Kind.StringArray:
                for (int i = 0; i < n; i++) if (!TryString(s, ref o)) return false;
                return true;
            default:
                for (int i = 0; i < n; i++) if (!TryObject(m.Element!, s, ref o, allowNull: true, depth + 1)) return false;
                return true;
        }
    }

    private static bool TryString(ReadOnlySpan<byte> s, ref int o)
    {
        if (!TryInt(s, ref o, out int header)) return false;
        if (header is -1 or 0) return true;
        if (header > 0) return Skip(s, ref o, header * 2L); // UTF-16 form: header = chars
        int utf8Bytes = ~header;                             // UTF-8 form: ~bytes, then UTF-16 length
        if (!TryInt(s, ref o, out int utf16Length)) return false;
        if (utf16Length < -1 || utf16Length > utf8Bytes) return false;
        return Skip(s, ref o, utf8Bytes);
    }

    private static bool Skip(ReadOnlySpan<byte> s, ref int o, long bytes)
    {
        if (bytes < 0 || bytes > s.Length - o) return false;
        o += (int)bytes;
        return true;
    }

    private static bool TryInt(ReadOnlySpan<byte> s, ref int o, out int value)
    {
        value = 0;
        if (s.Length - o < 4) return false;
        value = BinaryPrimitives.ReadInt32LittleEndian(s[o..]);
        o += 4;
        return true;
    }

    // MemoryPack varint: first sbyte is the value (0..127, -1..-120) or a type code for what follows.
    private static bool TryVarInt(ReadOnlySpan<byte> s, ref int o, out long value)
    {
        value = 0;
        if (o >= s.Length) return false;
        sbyte code = (sbyte)s[o++];
        if (code >= -120) { value = code; return true; }
        int size = code switch { -121 or -122 => 1, -123 or -124 => 2, -125 or -126 => 4, _ => 8 };
        if (s.Length - o < size) return false;
        ReadOnlySpan<byte> v = s.Slice(o, size);
        value = code switch
        {
            -121 => v[0],
            -122 => (sbyte)v[0],
            -123 => BinaryPrimitives.ReadUInt16LittleEndian(v),
            -124 => BinaryPrimitives.ReadInt16LittleEndian(v),
            -125 => BinaryPrimitives.ReadUInt32LittleEndian(v),
            -126 => BinaryPrimitives.ReadInt32LittleEndian(v),
            -127 => (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(v), long.MaxValue),
            _ => BinaryPrimitives.ReadInt64LittleEndian(v),
        };
        o += size;
        return true;
    }

    private static Schema SchemaOf(Type type) => Schemas.GetOrAdd(type, Build);

    private static Schema Build(Type type)
    {
        if (type.GetCustomAttribute<MemoryPackableAttribute>() is not { GenerateType: GenerateType.VersionTolerant })
            throw new InvalidOperationException($"{type.Name} is not a version-tolerant MemoryPack message.");
        var members = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (Property: p, Order: p.GetCustomAttribute<MemoryPackOrderAttribute>()?.Order))
            .Where(p => p.Order is not null)
            .OrderBy(p => p.Order)
            .ToArray();
        for (int i = 0; i < members.Length; i++)
            if (members[i].Order != i) throw new InvalidOperationException($"{type.Name}: MemoryPackOrder must run 0..n-1 without gaps.");
        return new Schema { Name = type.Name, Members = members.Select(p => MemberOf(type, p.Property.PropertyType)).ToArray() };
    }

    private static Member MemberOf(Type owner, Type t)
    {
        if (t == typeof(string)) return new Member(Kind.String, 0, null);
        if (t.IsArray)
        {
            Type e = t.GetElementType()!;
            if (e == typeof(string)) return new Member(Kind.StringArray, 0, null);
            if (IsFixed(e)) return new Member(Kind.FixedArray, FixedSize(e), null);
            return new Member(Kind.ObjectArray, 0, SchemaOf(e));
        }
        if (IsFixed(t)) return new Member(Kind.Fixed, FixedSize(t), null);
        if (t.IsClass) return new Member(Kind.Object, 0, SchemaOf(t));
        throw new InvalidOperationException($"{owner.Name}: member type {t.Name} has no validation rule.");
    }

    private static bool IsFixed(Type t) => t.IsPrimitive || t.IsEnum;

    private static int FixedSize(Type t) => t == typeof(bool) ? 1 : (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(t).Invoke(null, null)!;
}
