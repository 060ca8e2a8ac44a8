using System.Xml.Linq;
using Engine.Tests.Shared;

namespace Engine.Protocol.Tests;

/// <summary>DESIGN.md: the protocol never references the runtime; server and client know only the protocol.</summary>
public class ProtocolArchitectureTests
{
    private static string[] ProjectReferences(string path) =>
        XDocument.Load(Path.Combine(SharedFixtures.RepoRoot, path)).Descendants("ProjectReference")
            .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value.Replace('\\', '/')))
            .ToArray();

    [Fact]
    public void Protocol_references_no_engine_project()
    {
        Assert.Empty(ProjectReferences("src/Engine.Protocol/Engine.Protocol.csproj"));
    }

    [Theory]
    [InlineData("src/Engine.Server/Engine.Server.csproj")]
    [InlineData("src/Engine.Client/Engine.Client.csproj")]
    public void Server_and_client_reference_only_the_protocol(string path)
    {
        Assert.Equal(["Engine.Protocol"], ProjectReferences(path));
    }
}
