namespace Engine.Protocol;

/// <summary>
/// Why a request or connection failed (the <c>Code</c> of an <see cref="Opcode.Error"/> frame).
/// Wire values are explicit and append-only; <c>ErrorCodeFreezeTests</c> pins them. See docs/PROTOCOL.md.
/// </summary>
public enum ErrorCode : ushort
{
    /// <summary>Never sent.</summary>
    None = 0,
    /// <summary>The frame header is malformed (bad magic). The server closes the connection after sending it.</summary>
    BadFrame = 1,
    /// <summary>The frame or Hello names a protocol version the server does not speak. Connection closed.</summary>
    UnsupportedVersion = 2,
    /// <summary>The header's length is past the maximum frame size. Connection closed.</summary>
    FrameTooLarge = 3,
    /// <summary>The opcode is not one the server accepts from a client. The body is skipped; the connection stays.</summary>
    UnknownOpcode = 4,
    /// <summary>The body is not a valid MemoryPack encoding of the opcode's message. The connection stays.</summary>
    BadBody = 5,
    /// <summary>A request came before a successful Hello, or Hello never came in time.</summary>
    HelloRequired = 6,
    /// <summary>The API key is missing or unknown, or this client may not connect without one.</summary>
    Unauthenticated = 7,
    /// <summary>The key's role does not allow this operation.</summary>
    Forbidden = 8,
    /// <summary>The request's deadline passed before it completed.</summary>
    DeadlineExceeded = 9,
    /// <summary>The request was cancelled (by a Cancel frame, or by the server shutting down).</summary>
    Cancelled = 10,
    /// <summary>The stream id is 0 for a request, or already in use by a request still in flight.</summary>
    BadStreamId = 11,
    /// <summary>The operation exists but this server has nothing to serve it with (no generator model, no ranking).</summary>
    NotAvailable = 12,
    /// <summary>A field is out of range or missing (k ≤ 0, empty prompt, ...).</summary>
    InvalidArgument = 13,
    /// <summary>The server failed while handling the request; the message says what, the connection stays.</summary>
    Internal = 14,
    /// <summary>The server is draining and accepts no new requests on this connection.</summary>
    ShuttingDown = 15,
    /// <summary>The thing named (a product, an experiment) does not exist.</summary>
    NotFound = 16,
}
