using System.Diagnostics.CodeAnalysis;

namespace Engine.Core.Gguf;

/// <summary>
/// The key/value metadata of a GGUF file, in file order, with typed accessors that fail with a
/// <see cref="GgufFormatException"/> naming the file and the key.
/// </summary>
public sealed class GgufMetadata
{
    private readonly List<KeyValuePair<string, GgufValue>> _ordered = new();
    private readonly Dictionary<string, GgufValue> _byKey = new(StringComparer.Ordinal);

    public GgufMetadata(string file = "<memory>") => File = file;

    /// <summary>The file these came from, for error messages.</summary>
    public string File { get; }

    /// <summary>Entries in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Entries => _ordered;

    public int Count => _ordered.Count;

    /// <summary>Adds or replaces a key (replacing keeps its original position).</summary>
    public void Set(string key, GgufValue value)
    {
        if (_byKey.ContainsKey(key))
        {
            int i = _ordered.FindIndex(p => p.Key == key);
            _ordered[i] = new(key, value);
        }
        else
        {
            _ordered.Add(new(key, value));
        }
        _byKey[key] = value;
    }

    /// <summary>Adds a key read from a file; a duplicate key is a format error.</summary>
    internal void AddFromFile(string key, GgufValue value)
    {
        if (!_byKey.TryAdd(key, value))
            GgufFormatException.Throw(File, key, "duplicate metadata key");
        _ordered.Add(new(key, value));
    }

    public bool Contains(string key) => _byKey.ContainsKey(key);

    public bool TryGet(string key, [NotNullWhen(true)] out GgufValue? value) => _byKey.TryGetValue(key, out value);

    public GgufValue Get(string key) =>
        _byKey.TryGetValue(key, out var v) ? v : throw new GgufFormatException(File, key, "missing metadata key");

    public string GetString(string key)
    {
        var v = Get(key);
        return v.Value as string ?? throw Mistyped(key, v, "a string");
    }

    public string? GetStringOrNull(string key) => TryGet(key, out var v) ? v.Value as string ?? throw Mistyped(key, v, "a string") : null;

    /// <summary>An integer of any width, as long.</summary>
    public long GetInteger(string key)
    {
        var v = Get(key);
        return ToLong(key, v);
    }

    public long GetInteger(string key, long fallback) => TryGet(key, out var v) ? ToLong(key, v) : fallback;

    /// <summary>A float32/float64 (or an integer) as float.</summary>
    public float GetFloat(string key)
    {
        var v = Get(key);
        return ToFloat(key, v);
    }

    public float GetFloat(string key, float fallback) => TryGet(key, out var v) ? ToFloat(key, v) : fallback;

    public bool GetBool(string key, bool fallback) =>
        TryGet(key, out var v) ? v.Value as bool? ?? throw Mistyped(key, v, "a bool") : fallback;

    /// <summary>An array whose elements are of CLR type <typeparamref name="T"/> (string, float, int, …).</summary>
    public T[] GetArray<T>(string key)
    {
        var v = Get(key);
        return v.Value as T[] ?? throw Mistyped(key, v, $"an array of {typeof(T).Name}");
    }

    public T[]? GetArrayOrNull<T>(string key) =>
        TryGet(key, out var v) ? v.Value as T[] ?? throw Mistyped(key, v, $"an array of {typeof(T).Name}") : null;

    /// <summary>An integer array of any element width, widened to int (fails if a value does not fit).</summary>
    public int[] GetIntArray(string key)
    {
        var v = Get(key);
        if (v.Value is int[] ints) return ints;
        if (v.Value is not Array a || v.Type != GgufValueType.Array) throw Mistyped(key, v, "an integer array");
        var result = new int[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            object? e = a.GetValue(i);
            long x = e switch
            {
                byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui,
                ulong ul when ul <= int.MaxValue => (long)ul, long l => l,
                _ => throw Mistyped(key, v, "an integer array"),
            };
            if (x is < int.MinValue or > int.MaxValue) throw Mistyped(key, v, "an array of 32-bit integers");
            result[i] = (int)x;
        }
        return result;
    }

    private long ToLong(string key, GgufValue v) => v.Value switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui, int i => i,
        ulong ul when ul <= long.MaxValue => (long)ul, long l => l,
        _ => throw Mistyped(key, v, "an integer"),
    };

    private float ToFloat(string key, GgufValue v) => v.Value switch
    {
        float f => f, double d => (float)d,
        _ when v.IsInteger => ToLong(key, v),
        _ => throw Mistyped(key, v, "a number"),
    };

    private GgufFormatException Mistyped(string key, GgufValue v, string expected) =>
        new(File, key, $"expected {expected}, found {(v.Type == GgufValueType.Array ? $"array of {v.ElementType}" : v.Type.ToString())}");
}
