namespace Engine.Core.Gguf;

/// <summary>
/// Metadata value types as numbered in the GGUF specification (llama.cpp docs/gguf.md,
/// <c>enum gguf_metadata_value_type</c>). Persisted values: explicit and append-only.
/// </summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}
