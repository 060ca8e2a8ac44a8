namespace Engine.Tests.Shared;

/// <summary>
/// Locates the read-only fixtures folder <c>../shared</c> beside the repository (models, tokenizer
/// vectors). Override with the environment variable <c>ENGINE_SHARED</c>. Tests that need it use
/// <see cref="RequiresSharedFactAttribute"/> and skip with a clear message when it is absent.
/// </summary>
public static class SharedFixtures
{
    private static readonly Lazy<string?> _root = new(Find);

    /// <summary>The shared folder, or null when absent.</summary>
    public static string? Root => _root.Value;

    /// <summary>The repository root (the folder holding Engine.sln).</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Engine.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public const string MissingMessage = "../shared fixtures are absent (set ENGINE_SHARED or place the shared folder beside the repository)";

    /// <summary>Full path of a file under the shared folder (throws when absent: guard with the attribute).</summary>
    public static string PathOf(params string[] parts) =>
        Path.Combine([Root ?? throw new InvalidOperationException(MissingMessage), .. parts]);

    private static string? Find()
    {
        string? env = Environment.GetEnvironmentVariable("ENGINE_SHARED");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? env : null;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            {
                string candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
                return Directory.Exists(Path.Combine(candidate, "models")) ? candidate : null;
            }
            dir = dir.Parent;
        }
        return null;
    }
}

/// <summary>A fact that is skipped, with a message saying why, when ../shared is absent.</summary>
public sealed class RequiresSharedFactAttribute : FactAttribute
{
    public RequiresSharedFactAttribute()
    {
        if (SharedFixtures.Root is null) Skip = SharedFixtures.MissingMessage;
    }
}

/// <summary>A theory that is skipped, with a message saying why, when ../shared is absent.</summary>
public sealed class RequiresSharedTheoryAttribute : TheoryAttribute
{
    public RequiresSharedTheoryAttribute()
    {
        if (SharedFixtures.Root is null) Skip = SharedFixtures.MissingMessage;
    }
}
