using System.Diagnostics.CodeAnalysis;

namespace Engine.Core.Gguf;

/// <summary>
/// The one error a GGUF file can cause: a bad magic, an unsupported version, a truncated or
/// inconsistent field, an unsupported tensor type, a missing or mistyped metadata key.
/// The message names the file and the field.
/// </summary>
public sealed class GgufFormatException : Exception
{
    public GgufFormatException(string file, string field, string problem)
        : base($"{file}: {field}: {problem}")
    {
        File = file;
        Field = field;
        Problem = problem;
    }

    /// <summary>Path (or name) of the file.</summary>
    public string File { get; }

    /// <summary>The header field, metadata key or tensor name at fault.</summary>
    public string Field { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }

    [DoesNotReturn]
    internal static void Throw(string file, string field, string problem) =>
        throw new GgufFormatException(file, field, problem);
}
