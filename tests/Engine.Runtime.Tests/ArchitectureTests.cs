using System.Xml.Linq;
using Engine.Tests.Shared;

namespace Engine.Runtime.Tests;

/// <summary>
/// Pins the dependency direction of DESIGN.md: Core at the bottom with no dependencies; Cpu and
/// Kernels implement the backend interface side by side and never reference each other; Runtime
/// depends on Core only (never on a concrete backend, Orleans, sockets or the protocol); only the
/// host (the CLI) picks a backend.
/// </summary>
public class ArchitectureTests
{
    private static readonly string[] ServerOnlyPackages = ["Orleans", "MemoryPack", "LLamaSharp", "ILGPU"];

    private static (string[] Projects, string[] Packages) ReferencesOf(string relativeProjectPath)
    {
        var doc = XDocument.Load(Path.Combine(SharedFixtures.RepoRoot, relativeProjectPath));
        string[] projects = doc.Descendants("ProjectReference")
            .Select(e => Path.GetFileNameWithoutExtension((string)e.Attribute("Include")!.Value.Replace('\\', '/')))
            .OrderBy(s => s, StringComparer.Ordinal).ToArray();
        string[] packages = doc.Descendants("PackageReference").Select(e => (string)e.Attribute("Include")!).ToArray();
        return (projects, packages);
    }

    [Fact]
    public void Core_references_nothing()
    {
        var (projects, packages) = ReferencesOf("src/Engine.Core/Engine.Core.csproj");
        Assert.Empty(projects);
        Assert.Empty(packages);
    }

    [Theory]
    [InlineData("src/Engine.Cpu/Engine.Cpu.csproj")]
    [InlineData("kernels/Engine.Kernels/Engine.Kernels.csproj")]
    [InlineData("src/Engine.Runtime/Engine.Runtime.csproj")]
    public void Backends_and_runtime_reference_only_core(string project)
    {
        var (projects, packages) = ReferencesOf(project);
        Assert.Equal(["Engine.Core"], projects);
        if (!project.Contains("Kernels"))
            Assert.DoesNotContain(packages, p => ServerOnlyPackages.Any(s => p.Contains(s, StringComparison.OrdinalIgnoreCase)));
    }
}
