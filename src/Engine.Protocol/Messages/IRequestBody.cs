namespace Engine.Protocol.Messages;

/// <summary>Every request body starts with its deadline (member 0), so the server can enforce it generically.</summary>
public interface IRequestBody
{
    /// <summary>Milliseconds the client will wait, counted from when the server reads the frame; 0 = the server's default.</summary>
    uint TimeoutMs { get; set; }
}
