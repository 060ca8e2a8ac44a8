using System.IO.Pipelines;

namespace Engine.Server;

/// <summary>A pair of pipe ends; <see cref="CreatePair"/> connects a client and a server in process (tests, benchmarks).</summary>
public sealed class DuplexPipe : IDuplexPipe
{
    /// <summary>Wraps two ends.</summary>
    public DuplexPipe(PipeReader input, PipeWriter output)
    {
        Input = input;
        Output = output;
    }

    /// <inheritdoc/>
    public PipeReader Input { get; }

    /// <inheritdoc/>
    public PipeWriter Output { get; }

    /// <summary>Two connected duplex pipes: what one writes the other reads.</summary>
    public static (DuplexPipe Client, DuplexPipe Server) CreatePair(PipeOptions? clientToServer = null, PipeOptions? serverToClient = null)
    {
        var up = new Pipe(clientToServer ?? PipeOptions.Default);
        var down = new Pipe(serverToClient ?? PipeOptions.Default);
        return (new DuplexPipe(down.Reader, up.Writer), new DuplexPipe(up.Reader, down.Writer));
    }
}
