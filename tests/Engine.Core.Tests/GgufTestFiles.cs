using Engine.Core.Gguf;

namespace Engine.Core.Tests;

/// <summary>Temp files and value comparison shared by the GGUF tests.</summary>
internal static class GgufTestFiles
{
    /// <summary>A fresh path in a per-process temp folder (deleted by <see cref="TempFile.Dispose"/>).</summary>
    public static TempFile Temp(string name = "t.gguf") => new(Path.Combine(Dir, $"{Guid.NewGuid():N}-{name}"));

    private static readonly string Dir = Directory.CreateTempSubdirectory("engine-gguf-tests-").FullName;

    /// <summary>Asserts two metadata values are equal in type, element type and content (floats bit for bit).</summary>
    public static void AssertSameValue(string key, GgufValue expected, GgufValue actual)
    {
        Assert.True(expected.Type == actual.Type, $"{key}: type {actual.Type}, expected {expected.Type}");
        if (expected.Type == GgufValueType.Array)
        {
            Assert.True(expected.ElementType == actual.ElementType, $"{key}: element type {actual.ElementType}, expected {expected.ElementType}");
            var e = (Array)expected.Value;
            var a = (Array)actual.Value;
            Assert.True(e.GetType() == a.GetType(), $"{key}: CLR type {a.GetType()}, expected {e.GetType()}");
            Assert.True(e.Length == a.Length, $"{key}: length {a.Length}, expected {e.Length}");
            for (int i = 0; i < e.Length; i++)
            {
                if (e is GgufValue[] ev) AssertSameValue($"{key}[{i}]", ev[i], ((GgufValue[])a)[i]);
                else AssertSameScalar($"{key}[{i}]", e.GetValue(i)!, a.GetValue(i)!);
            }
        }
        else
        {
            AssertSameScalar(key, expected.Value, actual.Value);
        }
    }

    private static void AssertSameScalar(string key, object e, object a)
    {
        Assert.True(e.GetType() == a.GetType(), $"{key}: CLR type {a.GetType()}, expected {e.GetType()}");
        bool same = (e, a) switch
        {
            (float x, float y) => BitConverter.SingleToInt32Bits(x) == BitConverter.SingleToInt32Bits(y),
            (double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y),
            _ => e.Equals(a),
        };
        Assert.True(same, $"{key}: {a}, expected {e}");
    }

    public static void AssertSameMetadata(GgufMetadata expected, GgufMetadata actual)
    {
        Assert.Equal(expected.Entries.Select(p => p.Key), actual.Entries.Select(p => p.Key));
        foreach (var (key, value) in expected.Entries) AssertSameValue(key, value, actual.Get(key));
    }
}

/// <summary>A temp file path deleted on dispose.</summary>
internal sealed class TempFile(string path) : IDisposable
{
    public string Path { get; } = path;

    public void Dispose()
    {
        try { File.Delete(Path); } catch (IOException) { }
    }

    public override string ToString() => Path;
}
