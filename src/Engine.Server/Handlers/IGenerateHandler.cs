using Engine.Protocol.Messages;

namespace Engine.Server.Handlers;

/// <summary>Where a generation handler puts streamed text; the server numbers and frames the pieces.</summary>
public interface ITokenSink
{
    /// <summary>Sends one piece of text to the client (awaits when the client reads slowly).</summary>
    ValueTask WriteAsync(string text, CancellationToken cancellationToken);
}

/// <summary>Writes text for a prompt (the generation scheduler plugs in here).</summary>
public interface IGenerateHandler
{
    /// <summary>
    /// Generates for <paramref name="request"/>, writing pieces to <paramref name="tokens"/> as they come,
    /// and returns the final text and attribution. The token must stop the work when cancelled
    /// (client Cancel, deadline, shutdown).
    /// </summary>
    Task<GenerateDone> GenerateAsync(GenerateRequest request, ITokenSink tokens, CancellationToken cancellationToken);
}
