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

    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);

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
