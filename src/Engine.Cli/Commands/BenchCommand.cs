using System.CommandLine;

namespace Engine.Cli.Commands;

/// <summary>`engine bench` (placeholder until its issue lands; replaced, not extended).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "(not yet available)");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("error: 'bench' is not available in this build");
            return ExitCodes.Internal;
        });
        return command;
    }
}
