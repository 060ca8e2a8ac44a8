namespace Engine.Cli;

/// <summary>Process exit codes of the <c>engine</c> command (documented in README.md).</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>Bad input: an unreadable, corrupt or unsupported file, a prompt too long, a bad value.</summary>
    public const int BadInput = 1;

    /// <summary>Command-line usage error (System.CommandLine's own parse errors also return non-zero).</summary>
    public const int Usage = 2;

    /// <summary>An unexpected internal failure.</summary>
    public const int Internal = 70;
}
