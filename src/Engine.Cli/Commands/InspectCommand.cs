using System.CommandLine;

namespace Engine.Cli.Commands;

/// <summary>`engine inspect` (placeholder until its issue lands; replaced, not extended).</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var command = new Command("inspect", "(not yet available)");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("error: 'inspect' is not available in this build");
            return ExitCodes.Internal;
        });
        return command;
    }
}
