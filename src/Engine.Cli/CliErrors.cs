using Engine.Core.Gguf;

namespace Engine.Cli;

/// <summary>
/// Runs a command body and turns the errors a user can cause into one clear line on stderr and a
/// non-zero exit code, with no stack trace.
/// </summary>
public static class CliErrors
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (GgufFormatException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (UserInputException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
    }
}

/// <summary>A problem with what the user asked for (a value out of range, a prompt too long), reported as one line.</summary>
public sealed class UserInputException(string message) : Exception(message);
