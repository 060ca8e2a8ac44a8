using System.CommandLine;

namespace Engine.Cli.Commands;

/// <summary>`engine synth-model` (placeholder until its issue lands; replaced, not extended).</summary>
internal static class SynthModelCommand
{
    public static Command Create()
    {
        var command = new Command("synth-model", "(not yet available)");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("error: 'synth-model' is not available in this build");
            return ExitCodes.Internal;
        });
        return command;
    }
}
