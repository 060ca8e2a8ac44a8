using System.CommandLine;

namespace Engine.Cli.Commands;

/// <summary>`engine generate` (placeholder until its issue lands; replaced, not extended).</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var command = new Command("generate", "(not yet available)");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("error: 'generate' is not available in this build");
            return ExitCodes.Internal;
        });
        return command;
    }
}
