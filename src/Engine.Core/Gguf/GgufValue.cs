namespace Engine.Core.Gguf;

/// <summary>
/// One metadata value. Scalars are boxed CLR primitives (byte, sbyte, ushort, short, uint, int,
/// float, bool, ulong, long, double) or <see cref="string"/>; arrays are typed CLR arrays of the
/// element type (<c>float[]</c>, <c>string[]</c>, …), and arrays of arrays are <c>GgufValue[]</c>.
/// </summary>
public sealed class GgufValue
{
    public GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    /// <summary>The value's type.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the type of the elements; otherwise unused.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The value itself (see the class remarks for the CLR types).</summary>
    public object Value { get; }

    public static GgufValue Of(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue Of(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue Of(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue Of(short v) => new(GgufValueType.Int16, v);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(long v) => new(GgufValueType.Int64, v);
    public static GgufValue Of(double v) => new(GgufValueType.Float64, v);

    public static GgufValue Of(byte[] v) => new(GgufValueType.Array, v, GgufValueType.UInt8);
    public static GgufValue Of(sbyte[] v) => new(GgufValueType.Array, v, GgufValueType.Int8);
    public static GgufValue Of(ushort[] v) => new(GgufValueType.Array, v, GgufValueType.UInt16);
    public static GgufValue Of(short[] v) => new(GgufValueType.Array, v, GgufValueType.Int16);
    public static GgufValue Of(uint[] v) => new(GgufValueType.Array, v, GgufValueType.UInt32);
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Of(bool[] v) => new(GgufValueType.Array, v, GgufValueType.Bool);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Of(ulong[] v) => new(GgufValueType.Array, v, GgufValueType.UInt64);
    public static GgufValue Of(long[] v) => new(GgufValueType.Array, v, GgufValueType.Int64);
    public static GgufValue Of(double[] v) => new(GgufValueType.Array, v, GgufValueType.Float64);

    /// <summary>An array of arrays: every element must itself be an array value.</summary>
    public static GgufValue OfArrays(params GgufValue[] arrays)
    {
        foreach (var a in arrays)
            if (a.Type != GgufValueType.Array) throw new ArgumentException($"element of type {a.Type} in an array of arrays", nameof(arrays));
        return new(GgufValueType.Array, arrays, GgufValueType.Array);
    }

    /// <summary>
    /// The CLR type a scalar of <paramref name="type"/> is held as (<c>byte</c> for UInt8, … <c>string</c> for String),
    /// and <see cref="GgufValue"/> for Array (the element type of an array of arrays).
    /// </summary>
    public static Type ClrTypeOf(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufValue),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown GGUF value type"),
    };

    /// <summary>Number of elements for an array, else 1.</summary>
    public int Count => Value is Array a ? a.Length : 1;

    /// <summary>True when the value is an integer of any width.</summary>
    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16
        or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64
        or GgufValueType.Int64;

    public override string ToString() => Value switch
    {
        string s => s,
        Array a => $"[{ElementType} x {a.Length}]",
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
