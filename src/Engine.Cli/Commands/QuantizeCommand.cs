using System.CommandLine;

namespace Engine.Cli.Commands;

/// <summary>`engine quantize` (placeholder until its issue lands; replaced, not extended).</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var command = new Command("quantize", "(not yet available)");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("error: 'quantize' is not available in this build");
            return ExitCodes.Internal;
        });
        return command;
    }
}
